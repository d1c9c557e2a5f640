"""An intake batch's Kafka records: cut to the events topic's message size, in order, and an event
too large for any message dead-lettered with its head and the reason."""

from __future__ import annotations

from datetime import UTC, datetime

from eventpipe.contracts import (
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ServerEvent,
)
from eventpipe.settings import Settings
from ingest_gateway.intake.batch import IntakeBatch
from ingest_gateway.intake.records import TOO_LARGE_KEPT_BYTES, TOO_LARGE_REASON, batch_entry
from tests.messages import decode_rows

RECEIVED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# The smallest message size the settings allow: 1 MiB and a little.
SETTINGS = Settings(max_body_bytes=1)


def event(n: int, size: int) -> ServerEvent:
    return ServerEvent(
        scope="create:shapes", timestamp=RECEIVED, obj_val=f"e{n}", payload="x" * size
    )


def test_a_batch_that_fits_one_message_is_one_record() -> None:
    entry = batch_entry(IntakeBatch(valid=[event(n, 100) for n in range(50)]), RECEIVED, SETTINGS)
    [record] = entry.records
    assert record.topic == SETTINGS.events_topic
    assert len(decode_rows(record.value).events) == record.events == 50


def test_a_larger_batch_is_cut_into_messages_in_order_and_a_huge_event_is_dead_lettered() -> None:
    events = [event(n, 300_000) for n in range(10)]
    events.insert(4, event(99, 2 * SETTINGS.max_message_bytes))
    entry = batch_entry(IntakeBatch(valid=events), RECEIVED, SETTINGS)

    parked = [r for r in entry.records if r.topic == SETTINGS.dead_letter_topic]
    messages = [r for r in entry.records if r.topic == SETTINGS.events_topic]
    assert len(messages) > 1
    assert all(len(r.value) <= SETTINGS.max_message_bytes for r in messages)
    stored = [e.obj_val for r in messages for e in decode_rows(r.value).events]
    assert stored == [f"e{n}" for n in range(10)]

    [huge] = parked
    headers = dict(huge.headers)
    assert headers[DEAD_LETTER_REASON_HEADER] == TOO_LARGE_REASON.encode()
    assert b"create:shapes" in headers[DEAD_LETTER_DETAIL_HEADER]
    assert len(huge.value) == TOO_LARGE_KEPT_BYTES
    assert b'"obj_val":"e99"' in huge.value
