"""Exports from a real (embedded) ClickHouse into a real store: the CSV users download."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from eventpipe.contracts import ExportFilter
from eventpipe.events_table import EXPORT_COLUMNS
from eventpipe.export_records import (
    ExportState,
    cancel_key,
    mark_cancelled,
    new_status,
    read_status,
    write_status,
)
from eventpipe.settings import Settings
from eventpipe.stores import FilesystemStore, ObjectNotFound, ObjectStore, Readable
from exporter.export_job import ExportCancelled, ExportWithdrawn, JobOptions, run_export
from tests.messages import export_request

Insert = Callable[[Client, list[dict[str, Any]]], None]
T0 = datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
EVERYTHING = ExportFilter(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1))
OPTIONS = JobOptions(ttl=timedelta(hours=1))


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return FilesystemStore(tmp_path / "exports")


def export(
    client: Client,
    store: ObjectStore,
    export_filter: ExportFilter = EVERYTHING,
    options: JobOptions = OPTIONS,
) -> tuple[list[list[str]], int]:
    """Run an export; return its CSV parsed into rows (header first) and the recorded rows."""
    request = export_request(export_filter)
    write_status(store, new_status(request.query_id, 1, "a.csv"))
    status = run_export(request, client, store, options)
    assert status.state is ExportState.FINISHED, status.error
    data = store.get_bytes(status.object_key)
    assert status.size == len(data)
    return list(csv.reader(io.StringIO(data.decode(), newline=""))), status.rows


def insert_wide_rows(client: Client, count: int) -> None:
    """``count`` events a millisecond apart from T0, each with 200 bytes of ``obj_val``."""
    client.command(
        "INSERT INTO events (scope, source, timestamp, obj_val)"
        " SELECT 'load:job', 'client', {t0:DateTime64(3, 'UTC')} + toIntervalMillisecond(number),"
        " repeat('x', 200) FROM numbers({count:UInt64})",
        parameters={"t0": T0, "count": count},
    )


def watch_uploads(store: ObjectStore, after_read: Callable[[str, int], None]) -> list[int]:
    """Make ``store.put`` note the size of every chunk it reads, and call ``after_read`` with the
    key and the bytes read so far; returns the (growing) list of chunk sizes."""
    sizes: list[int] = []
    store_put = store.put

    def put_watched(key: str, stream: Readable, content_type: str) -> int:
        def read(size: int = -1, /) -> bytes:
            chunk = stream.read(size)
            sizes.append(len(chunk))
            after_read(key, sum(sizes))
            return chunk

        return store_put(key, SimpleNamespace(read=read), content_type)

    store.put = put_watched  # type: ignore[method-assign]
    return sizes


def test_csv_header_columns_timestamps_nulls_and_order(
    events_clickhouse: Client, store: ObjectStore, insert_events: Insert
) -> None:
    later = {"scope": "load:job", "timestamp": T0 + timedelta(seconds=5), "user_id": 2}
    full = {
        "scope": "draw:object",
        "obj_name": "shape",
        "obj_id": 11,
        "obj_val": "",
        "timestamp": T0,
        "count": 3,
        "duration": 250,
        "project_id": 1,
        "task_id": 2,
        "job_id": 3,
        "user_id": 4,
        "user_name": "ann",
        "user_email": "ann@example.com",
        "org_id": 5,
        "org_slug": "acme",
        "payload": '{"a": "multi\nline, with ""quotes"""}',
    }
    insert_events(events_clickhouse, [later, full])

    rows, counted = export(events_clickhouse, store)

    assert rows[0] == list(EXPORT_COLUMNS)
    assert rows[1] == [
        "draw:object",
        "shape",
        "11",
        "",
        "client",
        "2026-03-01 10:00:00.123000+00:00",
        "3",
        "250",
        "1",
        "2",
        "3",
        "4",
        "ann",
        "ann@example.com",
        "5",
        "acme",
        '{"a": "multi\nline, with ""quotes"""}',
        "",
    ]
    # Nulls are empty cells; ordering is by timestamp, not insertion.
    assert rows[2] == [
        "load:job",
        "",
        "",
        "",
        "client",
        "2026-03-01 10:00:05.123000+00:00",
        "",
        "0",
        "",
        "",
        "",
        "2",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    assert counted == 2


@pytest.mark.parametrize("name", ["org_id", "user_id", "project_id", "task_id", "job_id"])
def test_each_id_filter_keeps_only_its_rows(
    name: str, events_clickhouse: Client, store: ObjectStore, insert_events: Insert
) -> None:
    insert_events(
        events_clickhouse,
        [
            {"scope": "load:job", "timestamp": T0, name: 7},
            {"scope": "save:job", "timestamp": T0 + timedelta(seconds=1), name: 8},
            {"scope": "debug:info", "timestamp": T0 + timedelta(seconds=2)},
        ],
    )
    rows, counted = export(
        events_clickhouse,
        store,
        ExportFilter(since=EVERYTHING.since, until=EVERYTHING.until, **{name: 7}),
    )
    assert [row[0] for row in rows[1:]] == ["load:job"] and counted == 1


def test_time_range_is_inclusive_and_filters_combine(
    events_clickhouse: Client, store: ObjectStore, insert_events: Insert
) -> None:
    insert_events(
        events_clickhouse,
        [
            {"scope": "load:job", "timestamp": T0 - timedelta(milliseconds=1), "user_id": 1},
            {"scope": "save:job", "timestamp": T0, "user_id": 1, "org_id": 3},
            {"scope": "debug:info", "timestamp": T0 + timedelta(seconds=1), "user_id": 1},
            {"scope": "zoom:image", "timestamp": T0 + timedelta(seconds=1), "user_id": 2},
            {"scope": "fit:image", "timestamp": T0 + timedelta(seconds=2), "user_id": 1},
        ],
    )
    in_range = ExportFilter(since=T0, until=T0 + timedelta(seconds=1), user_id=1)
    rows, _ = export(events_clickhouse, store, in_range)
    assert [row[0] for row in rows[1:]] == ["save:job", "debug:info"]

    with_org = ExportFilter(since=T0, until=T0 + timedelta(seconds=1), user_id=1, org_id=3)
    rows, _ = export(events_clickhouse, store, with_org)
    assert [row[0] for row in rows[1:]] == ["save:job"]


def test_an_empty_result_is_a_header_only_file(
    events_clickhouse: Client, store: ObjectStore
) -> None:
    rows, counted = export(events_clickhouse, store)
    assert rows == [list(EXPORT_COLUMNS)] and counted == 0


FORMULAS = ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]


@pytest.mark.parametrize("neutralize", [True, False])
def test_formula_neutralization(
    neutralize: bool, events_clickhouse: Client, store: ObjectStore, insert_events: Insert
) -> None:
    text_columns = ["obj_name", "obj_val", "user_name", "user_email", "org_slug", "payload"]
    insert_events(
        events_clickhouse,
        [
            {
                "scope": "load:job",
                "timestamp": T0 + timedelta(seconds=i),
                **dict.fromkeys(text_columns, formula),
            }
            for i, formula in enumerate(FORMULAS)
        ]
        + [{"scope": "load:job", "timestamp": T0 + timedelta(minutes=1), "obj_val": "a=b"}],
    )
    rows, _ = export(
        events_clickhouse,
        store,
        options=JobOptions(ttl=OPTIONS.ttl, neutralize_formulas=neutralize),
    )
    indexes = [EXPORT_COLUMNS.index(name) for name in text_columns]
    for row, formula in zip(rows[1:], FORMULAS, strict=False):
        expected = "'" + formula if neutralize else formula
        assert [row[i] for i in indexes] == [expected] * len(indexes)
    # Only a leading formula character counts; nulls stay empty either way.
    assert rows[-1][EXPORT_COLUMNS.index("obj_val")] == "a=b"
    assert rows[-1][EXPORT_COLUMNS.index("obj_name")] == ""


def test_a_query_failing_midway_publishes_nothing_and_fails_the_export(
    events_clickhouse: Client, store: ObjectStore, insert_events: Insert, tmp_path: Path
) -> None:
    insert_wide_rows(events_clickhouse, 200_000)
    # A client whose results stop with an error past 100k rows: the engine fails mid-stream,
    # after about 20 MB went out.
    limited = clickhouse_connect.get_client(
        dsn=f"chdb://{tmp_path / 'clickhouse'}",
        database=Settings().clickhouse_database,
        settings={"max_result_rows": 100_000, "max_block_size": 8192},
    )
    request = export_request(EVERYTHING)
    progress = watch_uploads(store, lambda key, uploaded: None)
    try:
        status = run_export(request, limited, store, OPTIONS)
    finally:
        limited.close()

    assert sum(progress) > 10_000_000  # the failure came mid-stream, not before it
    assert status.state is ExportState.FAILED
    assert status.error is not None and "TOO_MANY_ROWS_OR_BYTES" in status.error
    assert status.expires_at is not None
    assert read_status(store, request.query_id) == status
    with pytest.raises(ObjectNotFound):
        store.stat(status.object_key)
    assert [info.key for info in store.list("")] == [f"exports/{request.query_id}.json"]


def test_progress_is_recorded_while_running_and_cancel_requeues(
    events_clickhouse: Client, store: ObjectStore, insert_events: Insert
) -> None:
    insert_events(events_clickhouse, [{"scope": "load:job", "timestamp": T0}])
    request = export_request(EVERYTHING)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ExportCancelled):
        # progress_every=0: the first chunk reports progress, which sees the cancel request.
        run_export(
            request, events_clickhouse, store, JobOptions(OPTIONS.ttl, progress_every=0), cancel
        )
    status = read_status(store, request.query_id)
    assert status is not None and status.state is ExportState.QUEUED
    assert status.started_at is None  # a request handed back has not started, for its owner
    with pytest.raises(ObjectNotFound):
        store.stat(status.object_key)

    # Delivered again later, it runs from the start.
    finished = run_export(request, events_clickhouse, store, OPTIONS)
    assert (finished.state, finished.rows) == (ExportState.FINISHED, 1)
    assert finished.started_at is not None and finished.ended_at == finished.updated_at


def test_a_redelivered_request_for_an_ended_export_is_not_run_again(
    events_clickhouse: Client, store: ObjectStore, insert_events: Insert
) -> None:
    insert_events(events_clickhouse, [{"scope": "load:job", "timestamp": T0}])
    request = export_request(EVERYTHING)
    first = run_export(request, events_clickhouse, store, OPTIONS)
    insert_events(events_clickhouse, [{"scope": "save:job", "timestamp": T0}])
    again = run_export(request, events_clickhouse, store, OPTIONS)
    assert again == first and again.rows == 1


def test_an_export_its_owner_cancels_midway_stops_and_leaves_only_the_marker(
    events_clickhouse: Client, store: ObjectStore
) -> None:
    insert_wide_rows(events_clickhouse, 100_000)
    request = export_request(EVERYTHING)
    write_status(store, new_status(request.query_id, 1, "a", EVERYTHING))

    def cancel_midway(key: str, uploaded: int) -> None:
        if uploaded > 1_000_000 and key.endswith(".csv"):
            # The owner's cancel arrives while the file is being uploaded.
            mark_cancelled(store, request.query_id)

    uploads = watch_uploads(store, cancel_midway)
    with pytest.raises(ExportWithdrawn):
        run_export(request, events_clickhouse, store, JobOptions(OPTIONS.ttl, progress_every=0))

    assert 1_000_000 < sum(uploads) < 20_000_000  # stopped well before the ~25 MB file's end
    assert [info.key for info in store.list("")] == [cancel_key(request.query_id)]


def test_an_export_cancelled_while_queued_never_runs(
    events_clickhouse: Client, store: ObjectStore, insert_events: Insert
) -> None:
    insert_events(events_clickhouse, [{"scope": "load:job", "timestamp": T0}])
    request = export_request(EVERYTHING)
    write_status(store, new_status(request.query_id, 1, "a", EVERYTHING))
    mark_cancelled(store, request.query_id)
    for _ in range(2):  # and so does a second delivery of its request
        with pytest.raises(ExportWithdrawn):
            run_export(request, events_clickhouse, store, OPTIONS)
        assert [info.key for info in store.list("")] == [cancel_key(request.query_id)]
