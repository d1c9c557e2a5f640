"""The sweeper expires old exports and fails exports nobody runs any more."""

from __future__ import annotations

import dataclasses
import io
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from eventpipe.export_records import (
    ExportState,
    ExportStatus,
    mark_cancelled,
    new_status,
    owned_statuses,
    owner_index_key,
    read_status,
    record_new_export,
    utc_now,
    write_status,
)
from eventpipe.stores import FilesystemStore, ObjectNotFound, ObjectStore
from exporter.sweeper import SweepPolicy, sweep

POLICY = SweepPolicy(
    ttl=timedelta(hours=1),
    stale_running_after=timedelta(minutes=5),
    stale_queued_after=timedelta(hours=1),
)


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return FilesystemStore(tmp_path / "exports")


def finished_export(store: ObjectStore) -> ExportStatus:
    status = new_status(uuid.uuid4(), 1, "a.csv").ended(ExportState.FINISHED, POLICY.ttl, rows=1)
    store.put(status.object_key, io.BytesIO(b"scope\n"), "text/csv")
    record_new_export(store, status)
    return status


def test_expired_exports_lose_file_and_record_others_stay(store: ObjectStore) -> None:
    old, fresh = finished_export(store), finished_export(store)

    report = sweep(store, POLICY, now=utc_now() + POLICY.ttl + timedelta(seconds=1))
    assert report.expired == 2
    assert list(store.list("")) == []

    fresh = finished_export(store)
    assert sweep(store, POLICY, now=utc_now()).expired == 0
    assert read_status(store, fresh.query_id) == fresh
    assert store.stat(fresh.object_key).size == 6
    assert read_status(store, old.query_id) is None


@pytest.mark.parametrize(
    ("state", "silence", "reason"),
    [
        (ExportState.RUNNING, POLICY.stale_running_after, "stopped responding"),
        (ExportState.QUEUED, POLICY.stale_queued_after, "no exporter picked up"),
    ],
)
def test_silent_unfinished_exports_fail(
    store: ObjectStore, state: ExportState, silence: timedelta, reason: str
) -> None:
    status = new_status(uuid.uuid4(), 1, "a.csv").with_state(state)
    write_status(store, status)

    assert sweep(store, POLICY, now=status.updated_at + silence / 2).failed_stale == 0
    assert read_status(store, status.query_id) == status

    later = status.updated_at + silence + timedelta(seconds=1)
    assert sweep(store, POLICY, now=later).failed_stale == 1
    failed = read_status(store, status.query_id)
    assert failed is not None and failed.state is ExportState.FAILED
    assert failed.error is not None and reason in failed.error
    assert failed.expires_at is not None


def test_files_without_a_record_are_deleted_once_old(store: ObjectStore) -> None:
    store.put("exports/orphan.csv", io.BytesIO(b"x"), "text/csv")
    assert sweep(store, POLICY, now=utc_now()).orphans_deleted == 0
    assert sweep(store, POLICY, now=utc_now() + POLICY.ttl).orphans_deleted == 1
    with pytest.raises(ObjectNotFound):
        store.stat("exports/orphan.csv")


def test_an_exports_index_entry_lives_as_long_as_its_record(store: ObjectStore) -> None:
    # An export that runs for longer than a TTL without going stale.
    policy = dataclasses.replace(POLICY, stale_running_after=POLICY.ttl * 10)
    running = new_status(uuid.uuid4(), 1, "a.csv").with_state(ExportState.RUNNING)
    record_new_export(store, running)
    assert sweep(store, policy, now=utc_now() + POLICY.ttl * 2).orphans_deleted == 0
    assert [s.query_id for s in owned_statuses(store, 1)] == [running.query_id]
    # An entry whose record was never written goes a TTL later, as an orphan file does.
    lost = new_status(uuid.uuid4(), 1, "lost.csv")
    store.put(owner_index_key(1, lost.query_id), io.BytesIO(b""), "application/octet-stream")
    assert sweep(store, policy, now=utc_now() + POLICY.ttl).orphans_deleted == 1
    assert [info.key for info in store.list("exports/by-owner/")] == [
        owner_index_key(1, running.query_id)
    ]


def test_unreadable_records_are_left_alone(store: ObjectStore) -> None:
    store.put("exports/broken.json", io.BytesIO(b"{not json"), "application/json")
    assert sweep(store, POLICY, now=utc_now() + POLICY.ttl * 2).expired == 0
    assert store.stat("exports/broken.json").size == 9


def test_a_cancelled_export_loses_file_and_record_and_later_its_marker(store: ObjectStore) -> None:
    cancelled, kept = finished_export(store), finished_export(store)
    mark_cancelled(store, cancelled.query_id)

    assert sweep(store, POLICY, now=utc_now()).cancelled == 1
    assert read_status(store, cancelled.query_id) is None
    with pytest.raises(ObjectNotFound):
        store.stat(cancelled.object_key)
    assert read_status(store, kept.query_id) == kept
    # The marker outlives the record by a TTL: a request still queued in Kafka stays cancelled.
    assert sweep(store, POLICY, now=utc_now()).orphans_deleted == 0
    later = sweep(store, POLICY, now=utc_now() + POLICY.ttl + timedelta(seconds=1))
    assert (later.orphans_deleted, later.expired) == (1, 1)
    assert list(store.list("")) == []
