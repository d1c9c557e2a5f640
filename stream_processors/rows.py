"""Turn decoded ingest messages into columnar data for the ``events`` table.

This is the processor's hot path, so it leans on C-speed building blocks:
``msgspec.structs.astuple`` turns an event into a row (the :class:`~eventpipe.contracts.Event`
fields are declared in the order of :data:`~eventpipe.events_table.CVAT_COLUMNS`), ``zip(*rows)``
transposes a request's rows into columns, and only the few columns that need it get a second pass.

Each row is keyed by ``(request_id, event_seq)``: the client events of a request take
``event_seq`` 0..n-1 in the order they were sent and its working-time events n, n+1, ... in the
order of their buckets. Both are deterministic, so a redelivered message yields identical rows,
which the ReplacingMergeTree table collapses.

An intake event (from CVAT's server) is keyed by its content instead: ``request_id`` is a UUID
derived from the event as encoded, ``event_seq`` 0. CVAT's handler resends a whole batch when any
part of it failed, so the same event can arrive in two batches; both copies get one key.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any, Final

import msgspec
from msgspec.structs import astuple

from eventpipe.contracts import IngestMessage, IntakeMessage
from eventpipe.events_table import ACCESS_TOKEN_COLUMN, COLUMNS, CVAT_COLUMNS
from stream_processors.timestamps import epoch_micros, epoch_micros_of
from stream_processors.working_time import working_time_events

_TIMESTAMP: Final = COLUMNS.index("timestamp")
_SOURCE: Final = COLUMNS.index("source")
_DURATION: Final = COLUMNS.index("duration")
_REQUEST_ID: Final = COLUMNS.index("request_id")
_EVENT_SEQ: Final = COLUMNS.index("event_seq")
_RECEIVED_AT: Final = COLUMNS.index("received_at")
_ACCESS_TOKEN: Final = COLUMNS.index(ACCESS_TOKEN_COLUMN)
_CVAT_WIDTH: Final = len(CVAT_COLUMNS)
# The namespace of intake events' content keys; fixed, so that every processor derives the same.
INTAKE_EVENT_NAMESPACE: Final = uuid.UUID("5f0c7f3e-8d3b-4f55-9a57-6f1c1f1b9e21")
_encode: Final = msgspec.json.Encoder().encode

Columns = list[list[Any]]


def build_columns(messages: Sequence[IngestMessage | IntakeMessage]) -> Columns:
    """One list per column of ``events`` (in :data:`COLUMNS` order) for all rows of ``messages``."""
    columns: Columns = [[] for _ in COLUMNS]
    event_columns = columns[: len(CVAT_COLUMNS)]
    request_ids = columns[_REQUEST_ID]
    event_seqs = columns[_EVENT_SEQ]
    received_ms = columns[_RECEIVED_AT]
    timestamps_ms: list[int] = []
    for message in messages:
        if isinstance(message, IntakeMessage):
            timestamps_ms += _add_intake_rows(columns, message)
            continue
        micros = epoch_micros_of([event.timestamp for event in message.events])
        derived = working_time_events(message, micros)
        # Per request: its client events, then its working-time events.
        events = message.events + derived
        if not events:
            continue
        # Transposed a request at a time, the events are still in the CPU cache; the whole
        # batch at once takes several times as long.
        # Working-time events are ServerEvents: their fields past CVAT's columns (the access
        # token and the caller's address) are left to the columns' own handling below.
        rows = [*map(astuple, message.events), *(astuple(e)[:_CVAT_WIDTH] for e in derived)]
        for column, values in zip(event_columns, zip(*rows, strict=True), strict=True):
            column += values
        # Timestamps go to the client as integers in ms (the table's DateTime64(3)): it then
        # neither converts each datetime itself nor reads one without an offset as local time.
        timestamps_ms += [us // 1000 for us in micros]
        timestamps_ms += [epoch_micros(event.timestamp) // 1000 for event in derived]
        request_ids += [message.request_id] * len(events)
        event_seqs += range(len(events))
        received_ms += [epoch_micros(message.received_at) // 1000] * len(events)
        # Client events carry no access token id: the gateway's callers are its own users.
        columns[_ACCESS_TOKEN] += [None] * len(events)
    columns[_TIMESTAMP] = timestamps_ms
    # Both columns are non-nullable in the table; a null must not make the whole batch fail.
    columns[_SOURCE] = [source or "" for source in columns[_SOURCE]]
    columns[_DURATION] = [duration or 0 for duration in columns[_DURATION]]
    return columns


def _add_intake_rows(columns: Columns, message: IntakeMessage) -> list[int]:
    """Append the rows of an intake message (CVAT's columns as they came, keyed by content);
    return their timestamps in ms, which the caller keeps apart from the datetimes."""
    events = message.events
    if not events:
        return []
    # A ServerEvent is an Event plus access_token_id, which follows CVAT's columns in the table.
    for column, values in zip(
        columns[: _ACCESS_TOKEN + 1],
        zip(*(astuple(event)[: _ACCESS_TOKEN + 1] for event in events), strict=True),
        strict=True,
    ):
        column += values
    columns[_REQUEST_ID] += [content_key(_encode(event)) for event in events]
    columns[_EVENT_SEQ] += [0] * len(events)
    columns[_RECEIVED_AT] += [epoch_micros(message.received_at) // 1000] * len(events)
    return [us // 1000 for us in epoch_micros_of([event.timestamp for event in events])]


def content_key(encoded_event: bytes) -> uuid.UUID:
    """A name-based (version 5) UUID of an encoded event, as :func:`uuid.uuid5` makes them."""
    digest = hashlib.sha1(INTAKE_EVENT_NAMESPACE.bytes + encoded_event, usedforsecurity=False)
    return uuid.UUID(bytes=digest.digest()[:16], version=5)


def row_count(columns: Columns) -> int:
    return len(columns[0])
