"""The intake's delivery on its error paths: a spool it cannot write, a record the broker refuses.

The spool is the real one, on disk; the producer stands in for the gateway's EventProducer (its
``ready`` flag and ``send_and_wait``), so that the broker's answers can be chosen.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest

from eventpipe.contracts import DEAD_LETTER_REASON_HEADER
from eventpipe.settings import Settings
from ingest_gateway.errors import ApiError
from ingest_gateway.intake.delivery import IntakeDelivery
from ingest_gateway.intake.records import TOO_LARGE_REASON
from ingest_gateway.intake.spool import IntakeSpool, SpooledRecord, SpoolEntry
from ingest_gateway.producer import EventProducer

SETTINGS = Settings(intake_spool_after_seconds=0.05)


class Broker:
    """Answers each send with ``answer(topic)``: None takes the record, an exception refuses it,
    ``"hang"`` never answers."""

    def __init__(self, answer: Any) -> None:
        self.ready = True
        self.answer = answer
        self.taken: list[tuple[str, bytes, list[tuple[str, bytes]] | None]] = []

    async def send_and_wait(
        self, topic: str, value: bytes, *, key: bytes, headers: Any = None
    ) -> None:
        answer = self.answer(topic)
        if answer == "hang":
            await asyncio.Event().wait()
        if isinstance(answer, Exception):
            raise answer
        self.taken.append((topic, value, headers))


class UnwritableSpool(IntakeSpool):
    async def append(self, entry: SpoolEntry) -> None:
        raise OSError(28, "No space left on device")


def batch(value: bytes = b"rows") -> SpoolEntry:
    return SpoolEntry(records=[SpooledRecord(SETTINGS.events_topic, b"key", value, [], events=1)])


def delivery(broker: Broker, spool: IntakeSpool) -> IntakeDelivery:
    spool.open()
    return IntakeDelivery(cast(EventProducer, broker), spool, SETTINGS)


async def test_a_spool_it_cannot_write_is_a_503_and_forgets_the_attempts(tmp_path: Path) -> None:
    # The broker does not answer in time, so the batch goes to the spool, which cannot take it.
    spool = UnwritableSpool(tmp_path / "spool", 1 << 20)
    intake = delivery(Broker(lambda topic: "hang"), spool)
    with pytest.raises(ApiError) as refused:
        await intake.deliver(batch())
    assert refused.value.status == 503
    assert "cannot write its spool" in str(refused.value)
    # CVAT's handler sends the batch again with records of new keys: nothing keeps the old ones.
    assert intake._late == {}
    spool.close()


async def test_a_record_the_broker_refuses_as_too_large_goes_to_the_dead_letter_topic(
    tmp_path: Path,
) -> None:
    broker = Broker(
        lambda topic: ApiError(413, "too large") if topic == SETTINGS.events_topic else None
    )
    spool = IntakeSpool(tmp_path / "spool", 1 << 20)
    await delivery(broker, spool).deliver(batch(b"x" * 100))
    [(topic, value, headers)] = broker.taken
    assert topic == SETTINGS.dead_letter_topic and value == b"x" * 100
    assert dict(headers or [])[DEAD_LETTER_REASON_HEADER] == TOO_LARGE_REASON.encode()
    assert spool.empty
    spool.close()
