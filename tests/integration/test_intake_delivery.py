"""The intake's delivery on its error paths, with the gateway's producer on a real broker and the
spool on disk: a record the producer refuses as too large, and a spool it cannot write while the
broker hangs."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from eventpipe.contracts import DEAD_LETTER_REASON_HEADER
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import EmbeddedBroker, free_port, start_broker
from ingest_gateway.errors import ApiError
from ingest_gateway.intake.delivery import IntakeDelivery
from ingest_gateway.intake.records import TOO_LARGE_KEPT_BYTES, TOO_LARGE_REASON
from ingest_gateway.intake.spool import IntakeSpool, SpooledRecord, SpoolEntry
from ingest_gateway.producer import EventProducer
from tests.conftest import isolated_settings
from tests.integration.delivery_support import eventually
from tests.integration.gateway_support import events_topic_size, topic_records


def batch(settings: Settings, value: bytes) -> SpoolEntry:
    return SpoolEntry(records=[SpooledRecord(settings.events_topic, b"key", value, [], events=1)])


@asynccontextmanager
async def intake_delivery(settings: Settings) -> AsyncIterator[tuple[IntakeDelivery, IntakeSpool]]:
    producer = EventProducer(settings)
    spool = IntakeSpool(settings.resolved_intake_spool_dir, settings.intake_spool_max_bytes)
    spool.open()
    await producer.start()
    try:
        await eventually(lambda: producer.ready, "the producer connected", timeout=30)
        yield IntakeDelivery(producer, spool, settings), spool
    finally:
        await producer.stop()
        spool.close()


async def test_a_record_too_large_for_the_events_topic_goes_to_the_dead_letter_topic(
    settings: Settings,
) -> None:
    # The events topic's messages are bounded by twice the body limit and 1 MiB more.
    settings = settings.with_overrides(max_body_bytes=64 * 1024)
    value = b"x" * (settings.max_message_bytes + 1)
    async with intake_delivery(settings) as (delivery, spool):
        await delivery.deliver(batch(settings, value))
        assert spool.empty
    [record] = await topic_records(settings, 1, topic=settings.dead_letter_topic)
    assert record.value == value[:TOO_LARGE_KEPT_BYTES]
    assert dict(record.headers)[DEAD_LETTER_REASON_HEADER] == TOO_LARGE_REASON.encode()
    # Nothing of it went to the events topic.
    assert await events_topic_size(settings) == 0


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own, which it stops (SIGSTOP) for a while."""
    broker = start_broker(port=free_port())
    yield broker
    broker.stop()


async def test_a_spool_it_cannot_write_while_the_broker_hangs_is_a_503(
    tmp_path: Path, own_broker: EmbeddedBroker
) -> None:
    settings = isolated_settings(tmp_path / "data", own_broker, intake_spool_after_seconds=0.05)
    async with intake_delivery(settings) as (delivery, _):
        # The spool's directory gives way to a file: each write of a segment fails (ENOTDIR).
        directory = settings.resolved_intake_spool_dir
        directory.rename(tmp_path / "moved-away")
        directory.write_bytes(b"")
        # A hung broker (SIGSTOP) does not answer in time, so the batch goes to the spool.
        own_broker.process.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(ApiError) as refused:
                await delivery.deliver(batch(settings, b"rows"))
        finally:
            own_broker.process.send_signal(signal.SIGCONT)
        # CVAT's handler sends the batch again with records of new keys: nothing keeps the
        # attempt that ran out of time.
        assert delivery._late == {}
    assert refused.value.status == 503
    assert "cannot write its spool" in str(refused.value)
    assert "Retry-After" in refused.value.headers
