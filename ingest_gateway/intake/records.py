"""The Kafka records of one intake batch: its valid events as rows messages the events topic takes
(:mod:`eventpipe.table_rows`), and a dead-letter record for each event that cannot be stored.

A batch up to the events topic's message size is one message. A larger one (CVAT's
handler sends up to 100 MB) is cut into several, in order. An event that alone exceeds a message
is dead-lettered with the reason and its first bytes: it would never fit through Kafka, and a 413
would only make CVAT's handler send it again for ever.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from eventpipe.contracts import (
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_MAX_DETAIL_BYTES,
    DEAD_LETTER_REASON_HEADER,
    ServerEvent,
)
from eventpipe.settings import Settings
from eventpipe.table_rows import IntakeRows, intake_rows
from ingest_gateway.intake.batch import IntakeBatch, InvalidEvent
from ingest_gateway.intake.spool import SpooledRecord, SpoolEntry

INVALID_EVENT_REASON: Final = "invalid-intake-event"
TOO_LARGE_REASON: Final = "intake-event-too-large"
# What of a too large event the dead-letter record keeps: enough to tell which event it was.
TOO_LARGE_KEPT_BYTES: Final = 64 * 1024
# Room a message leaves for its key and Kafka's record and batch headers.
_RECORD_OVERHEAD_BYTES: Final = 64 * 1024
# The bytes a message adds around its rows: its header's other fields.
_ENVELOPE_BYTES: Final = 256
# An event's key, in the header and in the body: twice a quoted UUID and a comma.
_KEY_BYTES: Final = 78


def batch_entry(batch: IntakeBatch, received_at: datetime, settings: Settings) -> SpoolEntry:
    """Every record the batch makes, dead letters first, then its events in order."""
    records = [_invalid(bad, settings) for bad in batch.invalid]
    if batch.valid:
        limit = settings.max_message_bytes - _RECORD_OVERHEAD_BYTES
        rendered = intake_rows(received_at, batch.valid)
        records += _messages(rendered, batch.valid, settings, limit)
    return SpoolEntry(records=records)


def _messages(
    rendered: IntakeRows, events: list[ServerEvent], settings: Settings, limit: int
) -> list[SpooledRecord]:
    """Rows messages of at most ``limit`` bytes, in order, and a dead letter for each event that
    alone exceeds it."""
    # The common case, a batch that fits in one message, without a step per event.
    events_bytes = sum(map(len, rendered.events)) + len(events) * (1 + _KEY_BYTES)
    if events_bytes + _ENVELOPE_BYTES <= limit:
        value = rendered.rendered().message()
        return [_event_record(settings, value, len(events))]
    records: list[SpooledRecord] = []
    part, part_bytes = rendered.empty(), _ENVELOPE_BYTES

    def close_part() -> None:
        if part.events:
            value = part.rendered().message()
            records.append(_event_record(settings, value, len(part.events)))

    for encoded, key, micros, event in zip(
        rendered.events, rendered.ids, rendered.micros, events, strict=True
    ):
        # The event and a comma, and its key.
        size = len(encoded) + 1 + _KEY_BYTES
        if size + _ENVELOPE_BYTES > limit:
            records.append(_too_large(event, encoded, size, limit, settings))
            continue
        if part_bytes + size > limit:
            close_part()
            part, part_bytes = rendered.empty(), _ENVELOPE_BYTES
        part.append(encoded, key, micros)
        part_bytes += size
    close_part()
    return records


def _event_record(settings: Settings, value: bytes, events: int) -> SpooledRecord:
    # A random key spreads batches over the partitions: the table orders events by time.
    return SpooledRecord(
        topic=settings.events_topic, key=uuid.uuid4().bytes, value=value, headers=[], events=events
    )


def _invalid(invalid: InvalidEvent, settings: Settings) -> SpooledRecord:
    detail = f"event {invalid.index} of an intake batch: {invalid.reason}"
    return dead_letter(settings, invalid.raw, INVALID_EVENT_REASON, detail)


def _too_large(
    event: ServerEvent, encoded: bytes, size: int, limit: int, settings: Settings
) -> SpooledRecord:
    detail = (
        f"a {event.scope} event of {event.timestamp.isoformat()} takes {size} bytes, more than "
        f"the {limit} a message of the events topic holds (EVENTPIPE_MAX_BODY_BYTES sizes it); "
        f"its first {TOO_LARGE_KEPT_BYTES} bytes are kept"
    )
    return dead_letter(settings, encoded[:TOO_LARGE_KEPT_BYTES], TOO_LARGE_REASON, detail)


def dead_letter(settings: Settings, value: bytes, reason: str, detail: str) -> SpooledRecord:
    """A record for the dead-letter topic: the value, why, and the detail an operator reads."""
    headers = [
        (DEAD_LETTER_REASON_HEADER, reason.encode()),
        (DEAD_LETTER_DETAIL_HEADER, detail.encode()[:DEAD_LETTER_MAX_DETAIL_BYTES]),
    ]
    return SpooledRecord(
        topic=settings.dead_letter_topic,
        key=uuid.uuid4().bytes,
        value=value,
        headers=headers,
        events=1,
    )
