"""Rows built from ingest messages, inserted through the sink and read back from ClickHouse."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eventpipe.clickhouse import clickhouse_client
from eventpipe.contracts import ClientEvent, Event, Identity, IntakeMessage, ServerEvent
from eventpipe.events_table import COLUMNS
from eventpipe.settings import Settings
from eventpipe.table_rows import FLAT_ROWS_VERSION, ROWS_FORMAT_VERSION
from stream_processors.clickhouse_sink import ClickHouseSink, InsertRefused
from stream_processors.migrations import apply_migrations
from stream_processors.rows import Chunk, Rows, build_rows
from tests.messages import ingest_message

T0 = datetime(2024, 5, 1, 8, 30, 0, 123456, tzinfo=UTC)


async def test_rows_round_trip_with_millisecond_utc_timestamps(tmp_path: Path) -> None:
    sent = ingest_message(
        Identity(user_id=7, user_name="ann"),
        [
            Event(scope="load:job", timestamp=T0, source="client", job_id=4, payload='{"a":1}'),
            Event(scope="change:frame", timestamp=T0, source="client", job_id=4, duration=2500),
        ],
        received_at=T0 + timedelta(minutes=1),
    )
    rows = build_rows([sent])

    # Closed at the end: a process may hold one embedded engine path at a time.
    with clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")) as client:
        apply_migrations(client)
        sink = ClickHouseSink(client)
        # A batch holding a message twice, then a redelivered batch.
        await sink.insert(build_rows([sent, sent]))
        await sink.insert(rows)
        rows = client.query(
            "SELECT event_seq, scope, toString(timestamp), toString(received_at), duration,"
            " job_id, payload, request_id FROM events ORDER BY event_seq"
        ).result_rows

    assert rows == [
        (
            0,
            "load:job",
            "2024-05-01 08:30:00.123",
            "2024-05-01 08:31:00.123",
            0,
            4,
            '{"a":1}',
            sent.request_id,
        ),
        (
            1,
            "change:frame",
            "2024-05-01 08:30:00.123",
            "2024-05-01 08:31:00.123",
            2500,
            4,
            None,
            sent.request_id,
        ),
        (
            2,
            "send:working_time",
            "2024-05-01 08:30:00.123",
            "2024-05-01 08:31:00.123",
            2500,
            4,
            f'{{"working_time":2500,"request":{{"id":"{sent.request_id}","user_agent":null}}}}',
            sent.request_id,
        ),
    ]


async def test_the_engine_unfolds_a_message_into_the_rows_read_one_by_one(tmp_path: Path) -> None:
    """The insert unfolds a message's line into the rows the processor writes when it reads them
    one by one: every column, the hidden ones too, for a client request and for CVAT's server."""
    client_request = ingest_message(
        Identity(user_id=7, user_name="ann", user_email="a@x.org", org_id=3, org_slug="lab"),
        [
            # As the gateway decoded them: the fields a client left out are left out of the line.
            ClientEvent(scope="load:job", timestamp=T0, job_id=4, obj_name="job", payload="{}"),
            ClientEvent(scope="user:activity", timestamp=T0 + timedelta(seconds=1), job_id=4),
            Event(scope="change:frame", timestamp=T0 + timedelta(seconds=2), duration=900),
        ],
        received_at=T0 + timedelta(minutes=1),
        remote_addr="203.0.113.9",
    )
    server_batch = IntakeMessage(
        received_at=T0 + timedelta(minutes=2),
        events=[
            ServerEvent(scope="create:task", timestamp=T0, source="server", task_id=5,
                        access_token_id=12, remote_addr="198.51.100.4", payload="{}"),
            ServerEvent(scope="export:dataset", timestamp=T0, source="server", count=2),
        ],
    )  # fmt: skip
    unfolded = build_rows([client_request, server_batch])
    one_by_one = Rows(
        [
            Chunk(line, chunk.ids, 1, chunk.earliest_ms, chunk.latest_ms, FLAT_ROWS_VERSION)
            for chunk in unfolded.chunks
            for _, line in chunk.keyed_lines()
        ]
    )
    select = f"SELECT {', '.join(COLUMNS)} FROM {{table:Identifier}} ORDER BY request_id, event_seq"

    with clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")) as client:
        apply_migrations(client)
        client.command("CREATE TABLE events_one_by_one AS events")
        await ClickHouseSink(client).insert(unfolded)
        await ClickHouseSink(client, "events_one_by_one").insert(one_by_one)
        stored = client.query(select, parameters={"table": "events"}).result_rows
        expected = client.query(select, parameters={"table": "events_one_by_one"}).result_rows

    assert stored == expected
    # user:activity is not stored; the working time is.
    assert len(stored) == 2 + 1 + 2
    by_scope = {row[0]: dict(zip(COLUMNS, row, strict=True)) for row in stored}
    assert by_scope["load:job"]["remote_addr"] == "203.0.113.9"
    assert by_scope["send:working_time"]["org_slug"] == "lab"
    assert (by_scope["change:frame"]["event_seq"], by_scope["send:working_time"]["event_seq"]) == (
        2,
        3,
    )
    assert by_scope["create:task"]["access_token_id"] == 12
    assert by_scope["create:task"]["remote_addr"] == "198.51.100.4"
    assert by_scope["export:dataset"]["remote_addr"] is None
    assert by_scope["create:task"]["request_id"] != by_scope["export:dataset"]["request_id"]


# One key for two events of CVAT's server.
BROKEN = Chunk(
    b'{"received_at":"2026-03-02T09:00:00Z","ids":["0b6f1f8e-3c1d-5a8e-9a1b-2c3d4e5f6a7b"],'
    b'"events":[{"scope":"a","timestamp":"2026-03-02T09:00:00Z"},'
    b'{"scope":"b","timestamp":"2026-03-02T09:00:00Z"}]}\n',
    ["0b6f1f8e-3c1d-5a8e-9a1b-2c3d4e5f6a7b"],
    2,
    1772442000000,
    1772442000000,
    ROWS_FORMAT_VERSION,
)


# A client request's line without its request id.
NO_REQUEST_ID = Chunk(
    b'{"received_at":"2026-03-02T09:00:00Z","events":[{"scope":"a","timestamp":"2026-03-02T09:00:00Z"}]}\n',
    ["0b6f1f8e-3c1d-5a8e-9a1b-2c3d4e5f6a7b"],
    1,
    1772442000000,
    1772442000000,
    ROWS_FORMAT_VERSION,
)


@pytest.mark.parametrize(
    ("batch", "reason"),
    [
        # Read by the engine: alone in its batch.
        ([BROKEN], "do not match its events"),
        ([NO_REQUEST_ID], "do not match its events"),
        # Read row by row: twice in its batch.
        ([BROKEN, BROKEN], "cannot be read one by one"),
    ],
    ids=["unfolded", "unfolded without request id", "one by one"],
)
async def test_a_message_whose_keys_do_not_match_its_events_is_refused(
    tmp_path: Path, batch: list[Chunk], reason: str
) -> None:
    """Refused, so that the agent dead-letters it, rather than stored under keys no lookup finds
    or retried for ever with the partition behind it; by either path."""
    with clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")) as client:
        apply_migrations(client)
        with pytest.raises(InsertRefused, match=reason):
            await ClickHouseSink(client).insert(Rows(batch))
        assert client.command("SELECT count() FROM events") == 0


# A worker restarted on an existing data path: the migrations are applied already, so nothing
# has inserted through the client before its first batch.
RESTARTED_WORKER = """
import asyncio, sys, uuid
from datetime import UTC, datetime
from eventpipe.contracts import Event, Identity, IngestMessage
from eventpipe.settings import Settings
from stream_processors.clickhouse_sink import ClickHouseSink
from eventpipe.clickhouse import clickhouse_client
from stream_processors.migrations import apply_migrations
from stream_processors.rows import build_rows

client = clickhouse_client(Settings(clickhouse_dsn=sys.argv[1]))
assert apply_migrations(client) == []
sink = ClickHouseSink(client)
now = datetime.now(UTC)
message = IngestMessage(
    request_id=uuid.uuid4(),
    received_at=now,
    identity=Identity(user_id=7, user_name="ann"),
    events=[Event(scope="load:job", timestamp=now)],
)
rows = build_rows([message])
before = set(sys.modules)
asyncio.run(sink.insert(rows))
print(len(client.query("SELECT * FROM events").result_rows))
print(" ".join(sorted(set(sys.modules) - before)))
"""


def test_a_restarted_workers_first_insert_imports_nothing(tmp_path: Path) -> None:
    """The client's lazy imports are paid for when the worker starts, not by its first batch."""
    dsn = f"chdb://{tmp_path / 'ch'}"
    with clickhouse_client(Settings(clickhouse_dsn=dsn)) as client:
        apply_migrations(client)

    done = subprocess.run(
        [sys.executable, "-c", RESTARTED_WORKER, dsn], capture_output=True, text=True, check=True
    )

    stored, imported = done.stdout.split("\n")[:2]
    assert stored == "1"
    assert imported == ""
