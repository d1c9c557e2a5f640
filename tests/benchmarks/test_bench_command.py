"""``eventpipe bench ingest`` and ``intake`` as an operator runs them: a stack of their own, a
report on stdout."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.dev_stack_support import EVENTPIPE


def bench(tmp_path: Path, *args: str) -> tuple[bytes, dict[str, Any]]:
    """``eventpipe bench ARGS --json`` in a data directory of its own: its progress (stderr)
    and its report (stdout, which holds the report alone and parses as JSON)."""
    finished = subprocess.run(
        [str(EVENTPIPE), "bench", *args, "--data-dir", str(tmp_path / "data"), "--json"],
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    report: dict[str, Any] = orjson.loads(finished.stdout)
    return finished.stderr, report


def assert_ratio(report: dict[str, Any], ratio: str, rate: str, baseline: str) -> None:
    """The report's ``ratio`` is what its own figures give."""
    assert report[ratio] == pytest.approx(report[rate] / report[baseline], abs=0.001)


def test_ingest_bench_reports_every_event_stored_as_json_on_stdout(tmp_path: Path) -> None:
    progress, report = bench(
        tmp_path, "ingest", "--events", "2000", "--concurrency", "4", "--gateway-processes", "1"
    )
    assert b"posting 20 requests with 4 connections" in progress
    assert report["statuses"] == {"201": 20}
    assert report["events_acknowledged"] == report["events_in_clickhouse"] == 2000
    assert report["acknowledged_events_per_s"] > 0
    assert report["latency_p50_ms"] <= report["latency_p99_ms"]
    for baseline in ("raw_produce_events_per_s", "raw_insert_events_per_s"):
        assert report[baseline] > 0
    assert_ratio(
        report,
        "ratio_acknowledged_to_raw_produce",
        "acknowledged_events_per_s",
        "raw_produce_events_per_s",
    )
    assert report["ratio_end_to_end_to_raw_insert"] > 0
    # A share of the machine's CPU time while the pipeline was measured.
    assert 0 <= report["host_steal_percent"] <= 100


def test_intake_bench_reports_the_intake_against_raw_produce(tmp_path: Path) -> None:
    progress, report = bench(
        tmp_path, "intake", "--events", "1000", "--batch", "50", "--concurrency", "4"
    )
    assert b"posting 20 batches with 4 connections" in progress
    assert (report["statuses"], report["events_accepted"]) == ({"200": 20}, 1000)
    assert report["latency_p50_ms"] <= report["latency_p99_ms"]
    assert_ratio(
        report, "ratio_intake_to_raw_produce", "intake_events_per_s", "raw_produce_events_per_s"
    )
