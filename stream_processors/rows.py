"""Turn decoded ingest messages into rows of the ``events`` table, as ``JSONEachRow`` lines.

An event is encoded once by msgspec: the :class:`~eventpipe.contracts.Event` fields are the first
columns of the table, named as they are (a :class:`~eventpipe.contracts.ServerEvent` also carries
``access_token_id`` and ``remote_addr``), and the few columns the pipeline adds are appended to
the encoded object as bytes. ClickHouse parses the lines itself.

Each row is keyed by ``(request_id, event_seq)``: the client events of a request take
``event_seq`` 0..n-1 in the order they were sent and its working-time events n, n+1, ... in the
order of their buckets. Both are deterministic, so a redelivered message yields the same keys, and
the sink stores only the rows whose keys the table does not hold yet.

``user:activity`` events are never stored, as CVAT stores none: they only count for working time.
Their places in ``event_seq`` stay unused, so the other events keep their keys.

An intake event (from CVAT's server) is keyed by its content instead: ``request_id`` is a UUID
derived from the event as encoded, ``event_seq`` 0. CVAT's handler resends a whole batch when any
part of it failed, so the same event can arrive in two batches; both copies get one key.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from eventpipe.contracts import USER_ACTIVITY_SCOPE, Event, IngestMessage, IntakeMessage
from stream_processors.timestamps import epoch_micros, epoch_micros_of
from stream_processors.working_time import working_time_events

# The namespace of intake events' content keys; fixed, so that every processor derives the same.
INTAKE_EVENT_NAMESPACE: Final = uuid.UUID("5f0c7f3e-8d3b-4f55-9a57-6f1c1f1b9e21")
_encode: Final = msgspec.json.Encoder().encode

RowKey = tuple[uuid.UUID, int]


@dataclass
class Rows:
    """Rows for one insert: a ``JSONEachRow`` line and a key per row, and the rows' time span."""

    lines: list[bytes] = field(default_factory=list)
    keys: list[RowKey] = field(default_factory=list)
    # Of the rows' timestamps, in ms since the epoch; the sink looks for stored copies between.
    earliest_ms: int | None = None
    latest_ms: int | None = None

    def __len__(self) -> int:
        return len(self.lines)

    def body(self) -> bytes:
        return b"".join(self.lines)

    def without(self, stored: set[RowKey]) -> Rows:
        """These rows less those whose keys are in ``stored``, and each key once: a batch can
        hold two copies of a message (the intake sent a batch again after a restart)."""
        kept = Rows(earliest_ms=self.earliest_ms, latest_ms=self.latest_ms)
        seen = set(stored)
        for line, key in zip(self.lines, self.keys, strict=True):
            if key not in seen:
                seen.add(key)
                kept.lines.append(line)
                kept.keys.append(key)
        return kept

    def has_copies(self) -> bool:
        return len(set(self.keys)) < len(self.keys)

    def _span(self, micros: Sequence[int]) -> None:
        if not micros:
            return
        low, high = min(micros) // 1000, max(micros) // 1000
        self.earliest_ms = low if self.earliest_ms is None else min(self.earliest_ms, low)
        self.latest_ms = high if self.latest_ms is None else max(self.latest_ms, high)


def build_rows(messages: Sequence[IngestMessage | IntakeMessage]) -> Rows:
    """The rows of ``messages``: per request its client events, then its working-time events."""
    rows = Rows()
    for message in messages:
        if isinstance(message, IntakeMessage):
            _add_intake_rows(rows, message)
        else:
            _add_client_rows(rows, message)
    return rows


def _add_client_rows(rows: Rows, message: IngestMessage) -> None:
    micros = epoch_micros_of([event.timestamp for event in message.events])
    derived = working_time_events(message, micros)
    # Client events carry no access token id: the gateway's callers are its own users.
    tail = b',"access_token_id":null,"remote_addr":%s,"request_id":"%s","received_at":%s' % (
        _encode(message.remote_addr),
        str(message.request_id).encode(),
        _encode(message.received_at),
    )
    request_id = message.request_id
    stored: list[int] = []
    for seq, event in enumerate(message.events):
        if event.scope == USER_ACTIVITY_SCOPE:
            continue
        rows.lines.append(_line(event, tail, seq))
        rows.keys.append((request_id, seq))
        stored.append(micros[seq])
    for seq, event in enumerate(derived, start=len(message.events)):
        rows.lines.append(_line(event, tail, seq))
        rows.keys.append((request_id, seq))
        stored.append(epoch_micros(event.timestamp))
    rows._span(stored)


def _add_intake_rows(rows: Rows, message: IntakeMessage) -> None:
    received_at = _encode(message.received_at)
    for event in message.events:
        encoded = _encode(event)
        key = content_key(encoded)
        tail = b',"request_id":"%s","received_at":%s' % (str(key).encode(), received_at)
        rows.lines.append(_with_tail(encoded, tail, 0))
        rows.keys.append((key, 0))
    rows._span(epoch_micros_of([event.timestamp for event in message.events]))


def _line(event: Event, tail: bytes, seq: int) -> bytes:
    return _with_tail(_encode(event), tail, seq)


def _with_tail(encoded: bytes, tail: bytes, seq: int) -> bytes:
    # ``encoded`` is a JSON object: drop its closing brace, append the columns, close it again.
    return b'%s%s,"event_seq":%d}\n' % (encoded[:-1], tail, seq)


def content_key(encoded_event: bytes) -> uuid.UUID:
    """A name-based (version 5) UUID of an encoded event, as :func:`uuid.uuid5` makes them."""
    digest = hashlib.sha1(INTAKE_EVENT_NAMESPACE.bytes + encoded_event, usedforsecurity=False)
    return uuid.UUID(bytes=digest.digest()[:16], version=5)
