"""Export metrics from real exports (embedded ClickHouse, filesystem store): durations by
outcome and the exports running. The registry is the test process's, so counts are compared
before and after."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from prometheus_client import REGISTRY

from eventpipe.contracts import ExportRequest
from eventpipe.stores import FilesystemStore, Readable
from exporter.export_job import ExportCancelled, JobOptions, run_export
from tests.integration.test_exporter_csv import EVERYTHING, OPTIONS, T0, Insert
from tests.messages import export_request


def exports_ended(outcome: str) -> float:
    labels = {"outcome": outcome}
    return REGISTRY.get_sample_value("eventpipe_export_duration_seconds_count", labels) or 0.0


def running() -> float | None:
    return REGISTRY.get_sample_value("eventpipe_exports_running")


def request() -> ExportRequest:
    return export_request(EVERYTHING)


class WatchingStore(FilesystemStore):
    """Notes how many exports were running while a CSV was being stored."""

    running_while_storing: list[float | None]

    def put(self, key: str, stream: Readable, content_type: str) -> int:
        if key.endswith(".csv"):
            self.running_while_storing.append(running())
        return super().put(key, stream, content_type)


def test_export_durations_by_outcome_and_exports_running(
    events_clickhouse: Client, tmp_path: Path, insert_events: Insert
) -> None:
    insert_events(events_clickhouse, [{"scope": "load:job", "timestamp": T0}])
    store = WatchingStore(tmp_path / "exports")
    store.running_while_storing = []
    before = {o: exports_ended(o) for o in ("finished", "failed", "cancelled")}

    assert run_export(request(), events_clickhouse, store, OPTIONS).state == "finished"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ExportCancelled):
        # progress_every=0: the first chunk reports progress, which sees the cancel request.
        run_export(
            request(), events_clickhouse, store, JobOptions(OPTIONS.ttl, progress_every=0), cancel
        )
    events_clickhouse.command("DROP TABLE events")
    assert run_export(request(), events_clickhouse, store, OPTIONS).state == "failed"

    after = {o: exports_ended(o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "finished": 1,
        "failed": 1,
        "cancelled": 1,
    }
    assert store.running_while_storing[0] == 1
    assert running() == 0
