"""``eventpipe bench compare``: whether two suite reports agree on every ratio.

Two suites run the same way on the same code should tell the same story; on a shared machine
their single runs spread widely, so the claim worth checking is that the medians of their ratios
stay within a tolerance of each other. Two ratios are "apart" by their difference relative to the
smaller one, so the verdict does not depend on which report comes first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from eventpipe.errors import CommandError

Ratios = dict[str, float | None]


def load_ratios(path: Path) -> Ratios:
    """The ratios of the report at ``path``, or a :class:`CommandError` saying what is wrong."""
    try:
        report = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise CommandError(
            f"no report at {path}: write one with `eventpipe bench --output {path.with_suffix('')}`"
        ) from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"{path} is not a JSON report: {exc}") from None
    not_a_report = CommandError(
        f"{path} is not a report of every stage of `eventpipe bench`: its ratios are missing"
    )
    if not isinstance(report, dict):
        raise not_a_report
    try:
        return suite_ratios(report)
    except (KeyError, TypeError, AttributeError):
        raise not_a_report from None


def suite_ratios(report: dict[str, Any]) -> Ratios:
    """Every ratio of a suite report, by a name that says what it compares."""
    ratios: Ratios = {}
    for run in report["ingest"]:
        level = f"{run['concurrency']} connection{'' if run['concurrency'] == 1 else 's'}"
        ratios[f"ack / raw produce, {level}"] = run["ratio_acknowledged_to_raw_produce"]
        ratios[f"e2e / raw insert, {level}"] = run["ratio_end_to_end_to_raw_insert"]
    ratios["export / raw query"] = report["export"]["export_vs_raw_rate"]
    ratios["export / naive exporter"] = report["export"]["export_vs_naive_rate"]
    return ratios


def percent_apart(first: float, second: float) -> float:
    return abs(first - second) / min(first, second) * 100


def compare_ratios(ours: Ratios, theirs: Ratios, tolerance_percent: float) -> dict[str, Any]:
    if ours.keys() != theirs.keys():
        raise CommandError(
            "the reports measured different things: "
            f"{sorted(ours.keys() ^ theirs.keys())} is in only one of them"
        )
    rows: list[dict[str, Any]] = []
    for name, value in ours.items():
        other = theirs[name]
        if not value or not other:
            raise CommandError(f"{name} is missing or zero in a report, so it cannot be compared")
        rows.append(
            {
                "ratio": name,
                "first": value,
                "second": other,
                "apart_percent": round(percent_apart(value, other), 1),
            }
        )
    largest = max(row["apart_percent"] for row in rows)
    return {
        "ratios": rows,
        "largest_apart_percent": largest,
        "tolerance_percent": tolerance_percent,
        "agree": largest <= tolerance_percent,
    }


def format_comparison(comparison: dict[str, Any]) -> str:
    lines = ["| ratio | first | second | apart |", "| --- | ---: | ---: | ---: |"]
    for row in comparison["ratios"]:
        over = " (over)" if row["apart_percent"] > comparison["tolerance_percent"] else ""
        lines.append(
            f"| {row['ratio']} | {row['first']} | {row['second']} | {row['apart_percent']}%{over} |"
        )
    verdict = "agree" if comparison["agree"] else "do not agree"
    lines.append(
        f"\nThe reports {verdict} within {comparison['tolerance_percent']:g}%: "
        f"the largest difference is {comparison['largest_apart_percent']}%."
    )
    return "\n".join(lines)
