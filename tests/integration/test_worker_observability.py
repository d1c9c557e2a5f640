"""A worker for operators: its /metrics after real messages, consumer lag, its JSON logs, and the
CPU priority it runs at."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from prometheus_client.samples import Sample

from eventpipe.contracts import ingest_message_encoder
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.testing.pipeline import wait_until_committed
from eventpipe_cli.worker import MAX_NICE
from stream_processors.consumer_lag import read_lag
from tests.integration.delivery_support import wait_for_log
from tests.integration.metrics_support import by_label, scrape, value
from tests.integration.worker_support import (
    ingest_message,
    produce,
    query,
    running_worker,
)


async def test_worker_metrics_after_processing_and_json_logs(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.with_overrides(metrics_port=free_port(), log_format="json")
    messages = [ingest_message(31, 0, 4, 10), ingest_message(32, 0)]
    await produce(settings, [*(ingest_message_encoder.encode(m) for m in messages), b"{nope"])
    # Nothing consumed yet: all three messages are lag.
    lag = await read_lag(settings, settings.processor_group_id, settings.events_topic)
    assert sum(lag.values()) == 3

    log_path = tmp_path / "worker.log"
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    with running_worker(settings, log_path):
        await wait_until_committed(settings)
        samples = await _scrape_until(url, lambda s: _caught_up(s, settings), timeout=30)
    (stored,) = query(settings, "SELECT count() FROM events")

    assert value(samples, "eventpipe_rows_inserted_total") == stored[0] > 0
    assert value(samples, "eventpipe_insert_batch_rows_sum") == stored[0]
    assert value(samples, "eventpipe_insert_batch_rows_count") >= 1
    assert value(samples, "eventpipe_insert_duration_seconds_count") >= 1
    assert value(samples, "eventpipe_insert_failures_total") == 0
    assert value(samples, "eventpipe_dead_letters_total", reason="bad-json") == 1
    final_lag = by_label(
        _lag_of(samples, settings.processor_group_id), "eventpipe_consumer_lag", "partition"
    )
    assert final_lag == {str(p): 0 for p in range(settings.topic_partitions)}

    lines = log_path.read_text().splitlines()
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= orjson.loads(line).keys(), line


def _caught_up(samples: list[Sample], settings: Settings) -> bool:
    lag = _lag_of(samples, settings.processor_group_id)
    return (
        len(lag) == settings.topic_partitions
        and all(s.value == 0 for s in lag)
        and value(samples, "eventpipe_dead_letters_total", reason="bad-json") == 1
    )


def _lag_of(samples: list[Sample], group: str) -> list[Sample]:
    return [s for s in samples if s.name == "eventpipe_consumer_lag" and s.labels["group"] == group]


async def _scrape_until(
    url: str, done: Callable[[list[Sample]], bool], timeout: float
) -> list[Sample]:
    """Scrape ``url`` until ``done(samples)``; the lag is refreshed every few seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            samples = scrape(url)
        except httpx.TransportError:
            samples = []  # not listening yet
        if samples and done(samples):
            return samples
        assert time.monotonic() < deadline, f"{url} never showed the worker caught up"
        await asyncio.sleep(0.5)


async def test_the_worker_lowers_its_cpu_priority_by_its_setting(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    with running_worker(settings.with_overrides(worker_nice=7), log) as worker:
        await wait_for_log(log, "consuming", worker, timeout=60)
        # Relative to this process's: CI may itself run at a lowered priority.
        expected = min(os.getpriority(os.PRIO_PROCESS, 0) + 7, MAX_NICE)
        assert os.getpriority(os.PRIO_PROCESS, worker.pid) == expected
        assert f"at niceness {expected}" in log.read_text()
