"""Read Prometheus text exposition the way a scraper does."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def scrape(url: str) -> list[Sample]:
    """Every sample ``url`` answers, parsed by prometheus_client's own parser."""
    answer = httpx.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return [
        sample
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sample called ``name`` with exactly ``labels``; 0 when there is none yet."""
    for sample in samples:
        if sample.name == name and sample.labels == labels:
            return sample.value
    return 0.0


def by_label(samples: list[Sample], name: str, label: str) -> dict[str, float]:
    """The samples called ``name``, by the value of one of their labels."""
    return {s.labels[label]: s.value for s in samples if s.name == name}
