"""``eventpipe bench ingest`` as an operator runs it: a stack of its own, a report on stdout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from tests.e2e.dev_stack_support import EVENTPIPE


def test_ingest_bench_reports_every_event_stored_as_json_on_stdout(tmp_path: Path) -> None:
    finished = subprocess.run(
        [
            str(EVENTPIPE),
            "bench",
            "ingest",
            "--events",
            "2000",
            "--concurrency",
            "4",
            "--gateway-processes",
            "1",
            "--data-dir",
            str(tmp_path / "data"),
            "--json",
        ],
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    # Progress goes to stderr, so stdout is the report alone and parses as JSON.
    assert b"posting 20 requests with 4 connections" in finished.stderr
    report = orjson.loads(finished.stdout)
    assert report["statuses"] == {"201": 20}
    assert report["events_acknowledged"] == report["events_in_clickhouse"] == 2000
    assert report["acknowledged_events_per_s"] > 0
    assert report["latency_p50_ms"] <= report["latency_p99_ms"]
    for baseline in ("raw_produce_events_per_s", "raw_insert_events_per_s"):
        assert report[baseline] > 0
    assert report["ratio_acknowledged_to_raw_produce"] == pytest.approx(
        report["acknowledged_events_per_s"] / report["raw_produce_events_per_s"], abs=0.001
    )
    assert report["ratio_end_to_end_to_raw_insert"] > 0
    # A share of the machine's CPU time while the pipeline was measured.
    assert 0 <= report["host_steal_percent"] <= 100
