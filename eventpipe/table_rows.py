"""Rows of the ``events`` table as the engine ingests them, and the Kafka message that carries them.

A row is one ``JSONEachRow`` line: an event as msgspec encodes it (its fields are the table's first
columns, named as the table names them; a field the encoding leaves out gets the column's
default), with the columns the pipeline adds appended. The gateway and the intake render the rows
of what they accept, once, and send them as a **rows message**; the processor inserts message
bodies as they are, without decoding a single event (:mod:`stream_processors.rows`).

A rows message is a header line, :class:`RowsHeader` as JSON, then the rows. The header says what
the processor needs without reading the rows: the keys' request ids (to find rows a redelivery
would store twice), the row count and the rows' time span (to look for them only there).

Each row is keyed by ``(request_id, event_seq)``. The client events of a request take ``event_seq``
0..n-1 in the order they were sent and its working-time events n, n+1, ...; ``user:activity``
events are not stored (CVAT stores none) and leave their places unused. An event of CVAT's server
is keyed by its content instead: ``request_id`` is a UUID of the event as encoded, ``event_seq`` 0,
since CVAT's handler resends a whole batch when any part of it failed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import msgspec

from eventpipe.contracts import USER_ACTIVITY_SCOPE, Event, IngestMessage, ServerEvent
from eventpipe.timestamps import epoch_micros, epoch_micros_of
from eventpipe.working_time import working_time_events

# Format 1 was the decoded request (eventpipe.contracts.IngestMessage / IntakeMessage); the
# processor still reads it, so that gateways can be upgraded after the workers.
ROWS_FORMAT_VERSION: Final = 2
ROWS_KIND: Final = "rows"
# msgspec writes fields in their declared order: this tells a rows message by its first bytes.
ROWS_MESSAGE_PREFIX: Final = b'{"kind":"%s"' % ROWS_KIND.encode()
# The namespace of intake events' content keys; fixed, so that every process derives the same.
INTAKE_EVENT_NAMESPACE: Final = uuid.UUID("5f0c7f3e-8d3b-4f55-9a57-6f1c1f1b9e21")

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


@dataclass
class RenderedRows:
    """The rows of one message, and what its header says of them."""

    lines: list[bytes] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    micros: list[int] = field(default_factory=list)

    def header(self) -> RowsHeader:
        return RowsHeader(
            ids=self.ids,
            rows=len(self.lines),
            earliest_ms=min(self.micros) // 1000,
            latest_ms=max(self.micros) // 1000,
        )

    def message(self) -> bytes:
        """The rows message; only for rows there are."""
        return b"%s\n%s" % (_encode(self.header()), b"".join(self.lines))


def encode_event(event: Event) -> bytes:
    return _encode(event)


def request_rows(
    message: IngestMessage, encoded_events: Sequence[bytes] | None = None
) -> RenderedRows:
    """The rows of an accepted ``POST /api/events``: its events, less ``user:activity``, then its
    working-time events. ``encoded_events`` are its events as :func:`encode_event` wrote them,
    for a caller that has them already."""
    events = message.events
    micros = epoch_micros_of([event.timestamp for event in events])
    derived = working_time_events(message, micros)
    if encoded_events is None:
        encoded_events = [_encode(event) for event in events]
    # Client events carry no access token id: the gateway's callers are its own users.
    request_id = str(message.request_id)
    tail = b',"access_token_id":null,"remote_addr":%s,"request_id":"%s","received_at":%s' % (
        _encode(message.remote_addr),
        request_id.encode(),
        _encode(message.received_at),
    )
    rendered = RenderedRows(ids=[request_id])
    for seq, (event, encoded) in enumerate(zip(events, encoded_events, strict=True)):
        if event.scope == USER_ACTIVITY_SCOPE:
            continue
        rendered.lines.append(_row(encoded, tail, seq))
        rendered.micros.append(micros[seq])
    for seq, event in enumerate(derived, start=len(events)):
        rendered.lines.append(_row(_encode(event), tail, seq))
        rendered.micros.append(epoch_micros(event.timestamp))
    return rendered


def intake_rows(received_at: datetime, events: Sequence[ServerEvent]) -> RenderedRows:
    """The rows of events CVAT's server sent, stored as they came, each keyed by its content."""
    received = _encode(received_at)
    rendered = RenderedRows(micros=epoch_micros_of([event.timestamp for event in events]))
    for event in events:
        encoded = _encode(event)
        key = content_key(encoded)
        tail = b',"request_id":"%s","received_at":%s' % (key.encode(), received)
        rendered.lines.append(_row(encoded, tail, 0))
        rendered.ids.append(key)
    return rendered


def _row(encoded: bytes, tail: bytes, seq: int) -> bytes:
    # ``encoded`` is a JSON object: drop its closing brace, append the columns, close it again.
    return b'%s%s,"event_seq":%d}\n' % (encoded[:-1], tail, seq)


def content_key(encoded_event: bytes) -> str:
    """A name-based (version 5) UUID of an encoded event, as :func:`uuid.uuid5` makes them, as
    text. Made from the digest's bytes directly: ``uuid.UUID`` costs four times as much, once
    per event of CVAT's server."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + encoded_event, usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def is_rows_message(raw: bytes) -> bool:
    return raw.startswith(ROWS_MESSAGE_PREFIX)
