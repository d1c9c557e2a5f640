"""Rows of the ``events`` table as the engine ingests them, and the Kafka message that carries them.

The gateway and the intake render what they accept once, as a **rows message**, and the processor
inserts message bodies as they are, without decoding a single event
(:mod:`stream_processors.rows`). A rows message is a header line, :class:`RowsHeader` as JSON,
then its body. The header says what the processor needs without reading the body: the keys'
request ids (to find rows a redelivery would store twice), the row count and the rows' time span
(to look for them only there).

The body of format 3 is one ``JSONEachRow`` line for the whole message, read with
:data:`LINE_STRUCTURE`: what its rows share (``received_at``; for a client request its
``request_id`` and ``remote_addr``) once, and ``events``, each event as msgspec encodes it, its
fields named as the table names its columns (a field the encoding leaves out gets the column's
default). The engine unfolds the events into rows (``ARRAY JOIN``). So the gateway writes the
bytes it encoded for its answer, and neither it nor the engine handles a column name per row.
Format 2, whose body was one line per row with every column, is still read, and is what the
processor falls back to for a message it must filter row by row (:func:`flat_rows`).

Each row is keyed by ``(request_id, event_seq)``. The client events of a request take ``event_seq``
0..n-1 in the order they were sent and its working-time events n, n+1, ...; ``user:activity``
events are not stored (CVAT stores none) and leave their places unused. An event of CVAT's server
is keyed by its content instead: its ``request_id`` is a UUID of the event as encoded (the line's
``ids``, in the events' order), ``event_seq`` 0, since CVAT's handler resends a whole batch when
any part of it failed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import msgspec

from eventpipe.contracts import USER_ACTIVITY_SCOPE, Event, IngestMessage, ServerEvent
from eventpipe.events_table import COLUMN_TYPES, CVAT_COLUMNS
from eventpipe.timestamps import epoch_micros, epoch_micros_of
from eventpipe.working_time import working_time_events

# Format 1 was the decoded request (eventpipe.contracts.IngestMessage / IntakeMessage), format 2
# a line per row; the processor still reads both, so that gateways can be upgraded after it.
ROWS_FORMAT_VERSION: Final = 3
FLAT_ROWS_VERSION: Final = 2
ROWS_VERSIONS: Final = frozenset({FLAT_ROWS_VERSION, ROWS_FORMAT_VERSION})
ROWS_KIND: Final = "rows"
# msgspec writes fields in their declared order: this tells a rows message by its first bytes.
ROWS_MESSAGE_PREFIX: Final = b'{"kind":"%s"' % ROWS_KIND.encode()
# The namespace of intake events' content keys; fixed, so that every process derives the same.
INTAKE_EVENT_NAMESPACE: Final = uuid.UUID("5f0c7f3e-8d3b-4f55-9a57-6f1c1f1b9e21")

# A format-3 line as ClickHouse reads it. An event's fields are the table's columns; a client
# event has neither ``access_token_id`` nor ``remote_addr`` (its request's is the line's), and a
# line of CVAT's server events has no ``request_id`` (the ``ids`` are the events' keys).
_EVENT_TUPLE: Final = ", ".join(f"{name} {COLUMN_TYPES[name]}" for name in CVAT_COLUMNS)
LINE_STRUCTURE: Final = (
    f"request_id UUID, received_at {COLUMN_TYPES['received_at']},"
    f" remote_addr {COLUMN_TYPES['remote_addr']}, ids Array(UUID),"
    f" events Array(Tuple({_EVENT_TUPLE}))"
)

_NAMESPACE_BYTES: Final = INTAKE_EVENT_NAMESPACE.bytes
_encode: Final = msgspec.json.Encoder().encode


class RowsHeader(msgspec.Struct, kw_only=True):
    kind: str = ROWS_KIND
    version: int = ROWS_FORMAT_VERSION
    # The request ids of the rows' keys, as text: one for a client request, one per event of
    # CVAT's server.
    ids: list[str]
    rows: int
    # The rows' timestamps, in ms since the epoch.
    earliest_ms: int
    latest_ms: int


rows_header_decoder: Final = msgspec.json.Decoder(RowsHeader)


@dataclass(frozen=True)
class Rendered:
    """A rows message: its header, and its body."""

    header: RowsHeader
    body: bytes

    def message(self) -> bytes:
        return b"%s\n%s" % (_encode(self.header), self.body)


def encode_event(event: Event) -> bytes:
    return _encode(event)


def request_rows(message: IngestMessage, events_json: bytes | None = None) -> Rendered | None:
    """The rows message of an accepted ``POST /api/events``: its events, less ``user:activity``,
    then its working-time events; None when nothing is to be stored. ``events_json`` is its
    events as :func:`encode_event` wrote them, joined by commas, for a caller that has them."""
    events = message.events
    micros = epoch_micros_of([event.timestamp for event in events])
    derived = working_time_events(message, micros)
    stored = [
        us for event, us in zip(events, micros, strict=True) if event.scope != USER_ACTIVITY_SCOPE
    ]
    stored += [epoch_micros(event.timestamp) for event in derived]
    if not stored:
        return None
    if events_json is None:
        events_json = b",".join(map(_encode, events))
    request_id = str(message.request_id)
    body = b'{"request_id":"%s","received_at":%s,"remote_addr":%s,"events":[%s]}\n' % (
        request_id.encode(),
        _encode(message.received_at),
        _encode(message.remote_addr),
        b",".join([events_json, *map(_encode, derived)]),
    )
    header = RowsHeader(
        ids=[request_id],
        rows=len(stored),
        earliest_ms=min(stored) // 1000,
        latest_ms=max(stored) // 1000,
    )
    return Rendered(header, body)


@dataclass
class IntakeRows:
    """Events of CVAT's server, each with its key and time, to be sent in one or more messages."""

    received_at: datetime
    events: list[bytes] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    micros: list[int] = field(default_factory=list)

    def empty(self) -> IntakeRows:
        """No events, received when these were."""
        return IntakeRows(self.received_at)

    def append(self, event: bytes, key: str, micros: int) -> None:
        self.events.append(event)
        self.ids.append(key)
        self.micros.append(micros)

    def rendered(self) -> Rendered:
        """The rows message of these events; only for events there are."""
        header = RowsHeader(
            ids=self.ids,
            rows=len(self.events),
            earliest_ms=min(self.micros) // 1000,
            latest_ms=max(self.micros) // 1000,
        )
        body = b'{"received_at":%s,"ids":%s,"events":[%s]}\n' % (
            _encode(self.received_at),
            _encode(self.ids),
            b",".join(self.events),
        )
        return Rendered(header, body)


def intake_rows(received_at: datetime, events: list[ServerEvent]) -> IntakeRows:
    """The rows of events CVAT's server sent, stored as they came, each keyed by its content."""
    encoded = list(map(_encode, events))
    return IntakeRows(
        received_at,
        encoded,
        list(map(content_key, encoded)),
        epoch_micros_of([event.timestamp for event in events]),
    )


class _Line(msgspec.Struct, kw_only=True):
    """A format-3 body, with its events left encoded."""

    request_id: str = ""
    received_at: msgspec.Raw
    remote_addr: msgspec.Raw = msgspec.Raw(b"null")
    ids: list[str] = []
    events: list[msgspec.Raw]


class _Scope(msgspec.Struct):
    scope: str


_line_decoder: Final = msgspec.json.Decoder(_Line)
_scope_decoder: Final = msgspec.json.Decoder(_Scope)

# A row's request id (as text) and event_seq.
RowKey = tuple[str, int]


def flat_rows(body: bytes) -> list[tuple[RowKey, bytes]]:
    """The rows of a format-3 body one by one, each as a format-2 line, with its key."""
    line = _line_decoder.decode(body)
    received = bytes(line.received_at)
    if line.ids:
        return [
            (
                (key, 0),
                _row(
                    bytes(event),
                    b',"request_id":"%s","received_at":%s' % (key.encode(), received),
                    0,
                ),
            )
            for key, event in zip(line.ids, line.events, strict=True)
        ]
    # Client events carry no access token id: the gateway's callers are its own users.
    tail = b',"access_token_id":null,"remote_addr":%s,"request_id":"%s","received_at":%s' % (
        bytes(line.remote_addr),
        line.request_id.encode(),
        received,
    )
    return [
        ((line.request_id, seq), _row(bytes(event), tail, seq))
        for seq, event in enumerate(line.events)
        if _scope_decoder.decode(event).scope != USER_ACTIVITY_SCOPE
    ]


def _row(encoded: bytes, tail: bytes, seq: int) -> bytes:
    # ``encoded`` is a JSON object: drop its closing brace, append the columns, close it again.
    return b'%s%s,"event_seq":%d}\n' % (encoded[:-1], tail, seq)


def content_key(encoded_event: bytes) -> str:
    """A name-based (version 5) UUID of an encoded event, as :func:`uuid.uuid5` makes them, as
    text. Made from the digest's text directly (``uuid.UUID`` costs four times as much, once per
    event of CVAT's server): the version nibble is 5, the variant's two bits 10."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + encoded_event, usedforsecurity=False).hexdigest()
    return (
        f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-"
        f"{_VARIANT_NIBBLE[digest[16]]}{digest[17:20]}-{digest[20:32]}"
    )


# A hex digit with its two high bits set to the RFC 4122 variant (10).
_VARIANT_NIBBLE: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def is_rows_message(raw: bytes) -> bool:
    return raw.startswith(ROWS_MESSAGE_PREFIX)
