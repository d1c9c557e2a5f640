"""The Kafka records of one intake batch: its valid events in messages the events topic takes, and
a dead-letter record for each event that cannot be stored.

A batch up to the events topic's message size is one message, encoded once. A larger one (CVAT's
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
    IntakeMessage,
    ServerEvent,
    intake_message_encoder,
)
from eventpipe.settings import Settings
from ingest_gateway.intake_batch import IntakeBatch, InvalidEvent
from ingest_gateway.intake_spool import SpooledRecord, SpoolEntry

INVALID_EVENT_REASON: Final = "invalid-intake-event"
TOO_LARGE_REASON: Final = "intake-event-too-large"
# What of a too large event the dead-letter record keeps: enough to tell which event it was.
TOO_LARGE_KEPT_BYTES: Final = 64 * 1024
# Room a message leaves for its key and Kafka's record and batch headers.
_RECORD_OVERHEAD_BYTES: Final = 64 * 1024
# The bytes a message adds around its events: its other fields and the separators.
_ENVELOPE_BYTES: Final = 256


def batch_entry(batch: IntakeBatch, received_at: datetime, settings: Settings) -> SpoolEntry:
    """Every record the batch makes, dead letters first, then its events in order."""
    records = [_invalid(bad, settings) for bad in batch.invalid]
    if batch.valid:
        limit = settings.max_message_bytes - _RECORD_OVERHEAD_BYTES
        whole = intake_message_encoder.encode(
            IntakeMessage(received_at=received_at, events=batch.valid)
        )
        if len(whole) <= limit:
            records.append(_event_record(settings, whole, len(batch.valid)))
        else:
            records += _split(batch.valid, received_at, settings, limit)
    return SpoolEntry(records=records)


def _split(
    events: list[ServerEvent], received_at: datetime, settings: Settings, limit: int
) -> list[SpooledRecord]:
    records: list[SpooledRecord] = []
    chunk: list[ServerEvent] = []
    chunk_bytes = _ENVELOPE_BYTES

    def close_chunk() -> None:
        if chunk:
            message = IntakeMessage(received_at=received_at, events=chunk)
            encoded = intake_message_encoder.encode(message)
            records.append(_event_record(settings, encoded, len(chunk)))

    for event in events:
        size = len(intake_message_encoder.encode(event)) + 1
        if size + _ENVELOPE_BYTES > limit:
            records.append(_too_large(event, size, limit, settings))
            continue
        if chunk_bytes + size > limit:
            close_chunk()
            chunk, chunk_bytes = [], _ENVELOPE_BYTES
        chunk.append(event)
        chunk_bytes += size
    close_chunk()
    return records


def _event_record(settings: Settings, value: bytes, events: int) -> SpooledRecord:
    # A random key spreads batches over the partitions: the table orders events by time.
    return SpooledRecord(
        topic=settings.events_topic, key=uuid.uuid4().bytes, value=value, headers=[], events=events
    )


def _invalid(invalid: InvalidEvent, settings: Settings) -> SpooledRecord:
    detail = f"event {invalid.index} of an intake batch: {invalid.reason}"
    return dead_letter(settings, invalid.raw, INVALID_EVENT_REASON, detail)


def _too_large(event: ServerEvent, size: int, limit: int, settings: Settings) -> SpooledRecord:
    encoded = intake_message_encoder.encode(event)
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
