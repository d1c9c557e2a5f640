"""Rows for the events table: columns, keys, timestamps, working time, redelivery."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from eventpipe.contracts import (
    Event,
    Identity,
    IngestMessage,
    IntakeMessage,
    ServerEvent,
    ingest_message_decoder,
    intake_message_decoder,
    intake_message_encoder,
    is_intake_message,
)
from eventpipe.contracts import ingest_message_encoder as encoder
from eventpipe.events_table import COLUMNS, EVENT_COLUMNS
from eventpipe.message_decoding import Undecodable
from eventpipe.table_rows import INTAKE_EVENT_NAMESPACE, Rendered, content_key, request_rows
from stream_processors.decoding import decode_ingest_message
from stream_processors.rows import Rows, build_rows
from tests.messages import flat_rows_message, ingest_message

T0 = datetime(2024, 5, 1, 8, 30, 0, 123456, tzinfo=UTC)
T0_TEXT = "2024-05-01T08:30:00.123456Z"  # the engine keeps the milliseconds
IDENTITY = Identity(user_id=7, user_name="ann", org_id=3, org_slug="lab")


def message(*offsets_s: float, job_id: int = 11) -> IngestMessage:
    return ingest_message(
        IDENTITY,
        received_at=T0 + timedelta(seconds=60),
        events=[
            Event(
                scope="click:element",
                timestamp=T0 + timedelta(seconds=s),
                source="client",
                job_id=job_id,
                user_id=7,
                payload='{"x":1}',
            )
            for s in offsets_s
        ],
    )


def as_rows(rows: Rows) -> list[dict[str, object]]:
    """The rows, one by one, as the processor reads them when it must drop some."""
    decoded = [orjson.loads(line) for chunk in rows.chunks for _, line in chunk.keyed_lines()]
    for row in decoded:
        assert sorted(row) == sorted(COLUMNS)
        row["request_id"] = uuid.UUID(row["request_id"])
    return decoded


def test_event_fields_are_declared_in_table_column_order() -> None:
    # An encoded event holds the first columns of a row, named as the table names them.
    assert tuple(Event.__struct_fields__) == EVENT_COLUMNS


def test_client_events_then_working_time_with_sequential_keys() -> None:
    first, second = message(0, 2, 5), message(1, job_id=12)
    rows = as_rows(build_rows([first, second]))

    assert [(r["request_id"], r["event_seq"], r["scope"]) for r in rows] == [
        (first.request_id, 0, "click:element"),
        (first.request_id, 1, "click:element"),
        (first.request_id, 2, "click:element"),
        (first.request_id, 3, "send:working_time"),  # 2 s + 3 s of work
        (second.request_id, 0, "click:element"),  # one event: no working time
    ]
    client_row, working_time = rows[0], rows[3]
    assert client_row["timestamp"] == T0_TEXT
    assert client_row["received_at"] == "2024-05-01T08:31:00.123456Z"
    assert (client_row["job_id"], client_row["user_id"]) == (11, 7)
    assert client_row["payload"] == '{"x":1}'
    assert working_time["duration"] == 5_000
    # The bucket's timestamp is that of the first event added to it: the request's first event.
    assert working_time["timestamp"] == T0_TEXT
    assert working_time["source"] == "server"
    assert working_time["org_slug"] == "lab"


def test_a_redelivered_message_yields_identical_rows() -> None:
    raw = encoder.encode(message(0, 1, 30))
    once = build_rows([ingest_message_decoder.decode(raw)])
    again = build_rows([ingest_message_decoder.decode(raw)])
    assert once == again
    assert len(once) == 4


def test_user_activity_counts_for_working_time_and_is_not_stored() -> None:
    sent = message(0, 2, 5)
    sent.events[1].scope = "user:activity"
    rows = as_rows(build_rows([sent]))
    assert [(r["event_seq"], r["scope"]) for r in rows] == [
        (0, "click:element"),
        (2, "click:element"),
        (3, "send:working_time"),
    ]
    assert rows[-1]["duration"] == 5_000


def test_the_rows_time_span_covers_every_row() -> None:
    rows = build_rows([message(3, 0, 7)])
    assert rows.earliest_ms == 1714552200123
    assert rows.latest_ms == 1714552200123 + 7_000


def test_an_empty_batch_has_no_rows_and_no_span() -> None:
    rows = build_rows([])
    assert len(rows) == 0 and rows.earliest_ms is None


def server_event(scope: str, offset_s: float, **fields: Any) -> ServerEvent:
    return ServerEvent(
        scope=scope,
        timestamp=T0 + timedelta(seconds=offset_s),
        source="server",
        payload='{"request":{"id":"r1"}}',
        **fields,
    )


def test_intake_events_are_stored_as_sent_and_keyed_by_content() -> None:
    created = server_event("create:task", 0, task_id=4, user_id=9, access_token_id=2)
    exported = server_event("export:dataset", 1, task_id=4, user_id=9)
    # CVAT's handler resends a whole batch when any part of it failed: the same event again.
    first = IntakeMessage(received_at=T0 + timedelta(seconds=60), events=[created, exported])
    resent = IntakeMessage(received_at=T0 + timedelta(seconds=90), events=[created])
    rows = as_rows(build_rows([message(0), first, resent]))

    client, stored_created, stored_exported, again = rows
    assert client["access_token_id"] is None
    assert [(r["scope"], r["source"], r["timestamp"]) for r in rows[1:3]] == [
        ("create:task", "server", T0_TEXT),
        ("export:dataset", "server", "2024-05-01T08:30:01.123456Z"),
    ]
    # No working time is derived from them, and nothing is stamped on them.
    assert len(rows) == 4
    assert (stored_created["task_id"], stored_created["user_id"]) == (4, 9)
    assert (stored_created["access_token_id"], stored_created["org_id"]) == (2, None)
    assert stored_created["received_at"] == "2024-05-01T08:31:00.123456Z"
    # One key for the copy, so the table keeps one row; another for another event.
    assert (again["request_id"], again["event_seq"]) == (stored_created["request_id"], 0)
    assert stored_exported["request_id"] != stored_created["request_id"]


def test_intake_messages_are_told_from_ingest_messages_by_their_first_bytes() -> None:
    intake = intake_message_encoder.encode(
        IntakeMessage(received_at=T0, events=[server_event("create:task", 0)])
    )
    assert is_intake_message(intake)
    assert not is_intake_message(encoder.encode(message(0)))
    assert decode_ingest_message(intake) == intake_message_decoder.decode(intake)


def test_without_drops_stored_keys_and_copies_within_the_batch() -> None:
    first, second = message(0, 2), message(1)
    rows = build_rows([first, second, first])
    assert rows.has_copies()
    kept = rows.without({(str(second.request_id), 0)})
    keys = [(row["request_id"], row["event_seq"]) for row in as_rows(kept)]
    assert keys == [(first.request_id, 0), (first.request_id, 1), (first.request_id, 2)]
    assert not kept.has_copies()


def test_a_rows_message_decodes_to_its_header_and_rows_as_they_came() -> None:
    sent = message(0, 2, 5)
    rendered = request_rows(sent)
    assert rendered is not None
    decoded = decode_ingest_message(rendered.message())
    assert isinstance(decoded, Rendered)
    assert decoded.header.rows == 4 and decoded.body == rendered.body
    assert decoded.header.ids == [str(sent.request_id)]
    # The same rows as a worker renders from the request's format-1 message.
    old_format = ingest_message_decoder.decode(encoder.encode(sent))
    assert build_rows([decoded]).bodies() == build_rows([old_format]).bodies()


def test_a_message_of_format_2_is_read_a_row_a_line() -> None:
    # What gateways of the previous version send: the rows of format 3, a line each.
    sent = message(0, 2, 5)
    decoded = decode_ingest_message(flat_rows_message(sent))
    assert isinstance(decoded, Rendered) and decoded.header.version == 2
    assert as_rows(build_rows([decoded])) == as_rows(build_rows([sent]))


@pytest.mark.parametrize(
    ("tamper", "reason", "detail"),
    [
        (lambda raw: raw.replace(b'"version":3', b'"version":4', 1), "unknown-version", "upgrade"),
        (lambda raw: raw[: raw.rindex(b"{")], "wrong-schema", "not one line"),
        (lambda raw: raw.replace(b'"rows":4', b'"rows":"4"', 1), "wrong-schema", "rows"),
        (lambda raw: raw.replace(b'"ids":', b'"ids"', 1), "bad-json", "malformed"),
        (lambda raw: raw.replace(b"\n", b" "), "wrong-schema", "no header line"),
        (
            lambda raw: raw.replace(b'"version":3', b'"version":2', 1),
            "wrong-schema",
            "counts 4 rows, the body differs",
        ),
    ],
    ids=["newer format", "cut short", "bad header", "header not JSON", "no header", "format 2"],
)
def test_a_rows_message_that_cannot_be_read_says_why(tamper: Any, reason: str, detail: str) -> None:
    rendered = request_rows(message(0, 2, 5))
    assert rendered is not None
    raw = tamper(rendered.message())
    with pytest.raises(Undecodable) as caught:
        decode_ingest_message(raw)
    assert caught.value.reason == reason and detail in caught.value.detail


@pytest.mark.parametrize("encoded", [b"{}", b'{"scope":"create:task","n":1}', bytes(range(256))])
def test_an_intake_events_key_is_the_version_5_uuid_of_its_content(encoded: bytes) -> None:
    # The same keys as uuid.UUID makes them: those of rows stored before are found again.
    digest = hashlib.sha1(INTAKE_EVENT_NAMESPACE.bytes + encoded, usedforsecurity=False).digest()
    assert content_key(encoded) == str(uuid.UUID(bytes=digest[:16], version=5))
