"""Getting an intake batch's records into Kafka: at once while the broker takes them, else through
the spool, in the order the batches came.

A batch goes straight to the broker only while the spool is empty (else it would overtake the
batches waiting there) and the broker is reachable. What the broker does not acknowledge within
``intake_spool_after_seconds`` is spooled, and the batch is answered 200 once it is on disk. The
drain sends the spool's entries, oldest first, whenever the broker is reachable, and releases
them once all their records are acknowledged.

The spool is drained in rounds, oldest first; a round's records are sent together and released
once all are acknowledged, and only those the broker did not acknowledge are sent again. An
attempt that outlives its wait keeps running, and the drain waits for its outcome before sending
the spooled copy, so a broker that acknowledges late does not get the record twice. A round an
intake stopped half-way, or an attempt the producer gave up on that still reached the broker,
can reach Kafka twice; an intake event's row key is derived from its content, so the table
stores it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Final

from eventpipe.settings import Settings
from ingest_gateway import errors
from ingest_gateway.errors import ApiError
from ingest_gateway.intake.records import TOO_LARGE_KEPT_BYTES, TOO_LARGE_REASON, dead_letter
from ingest_gateway.intake.spool import IntakeSpool, SpooledRecord, SpoolEntry, SpoolFull
from ingest_gateway.producer import RETRY_AFTER_SECONDS, EventProducer

log = logging.getLogger(__name__)

# Spool bytes one drain round sends before it moves the cursor (one fsync per round).
DRAIN_ROUND_BYTES: Final = 8 * 1024 * 1024
# How often a drain waiting for the broker looks again.
DRAIN_RETRY_SECONDS: Final = 1.0
_WRITE_WAIT_SECONDS: Final = 0.01


class IntakeDelivery:
    def __init__(self, producer: EventProducer, spool: IntakeSpool, settings: Settings) -> None:
        self._producer = producer
        self._spool = spool
        self._settings = settings
        # Records sent at once: aiokafka batches them, and the producer refuses more than its
        # buffer holds unacknowledged.
        self._wave_bytes = settings.producer_buffer_bytes // 2
        # Attempts that outlived their wait, by record key; the producer bounds each by
        # produce_timeout_seconds.
        self._late: dict[bytes, asyncio.Future[None]] = {}

    async def deliver(self, entry: SpoolEntry) -> None:
        """Return once the entry's records are in Kafka or on disk; a 503 when the spool is
        full or cannot be written."""
        records = entry.records
        if self._spool.empty and self._producer.ready:
            records = await self._send(records, self._settings.intake_spool_after_seconds)
            if not records:
                return
        try:
            await self._spool.append(SpoolEntry(records=records))
        except (SpoolFull, OSError) as refused:
            # The sender resends the batch with records of new keys: attempts that outlived
            # their wait are for records no longer kept anywhere.
            for record in records:
                self._late.pop(record.key, None)
            raise self._unavailable(refused) from None

    @staticmethod
    def _unavailable(refused: Exception) -> errors.ApiError:
        if isinstance(refused, SpoolFull):
            return errors.unavailable(
                "the event broker is unavailable and the intake's spool is full; retry shortly",
                RETRY_AFTER_SECONDS,
            )
        # Logged by the spool's writer; nothing the sender did wrong, and worth asking again.
        return errors.unavailable(
            "the event broker is unavailable and the intake cannot write its spool; retry shortly",
            RETRY_AFTER_SECONDS,
        )

    async def drain(self) -> None:
        """Send the spool's entries whenever the broker is reachable, for ever."""
        while True:
            await self._spool.wait_for_entries()
            if not self._producer.ready:
                await asyncio.sleep(DRAIN_RETRY_SECONDS)
                continue
            taken = await self._spool.take(DRAIN_ROUND_BYTES)
            if not taken.entries:
                # Counted but not yet on disk: it will be in a moment.
                await asyncio.sleep(_WRITE_WAIT_SECONDS)
                continue
            records = [record for entry in taken.entries for record in entry.records]
            # Only what the broker did not acknowledge is sent again, so nothing goes twice.
            while unsent := await self._send(records, self._settings.produce_timeout_seconds):
                log.warning(
                    "the broker took %d of %d records from the intake's spool; trying again",
                    len(records) - len(unsent),
                    len(records),
                )
                records = unsent
                await asyncio.sleep(DRAIN_RETRY_SECONDS)
            await self._spool.release(taken)

    async def _send(self, records: list[SpooledRecord], timeout: float) -> list[SpooledRecord]:
        """Send in waves of at most ``_wave_bytes``; return the records not acknowledged (those
        of a failed wave and every later one), in order."""
        waves = list(_waves(records, self._wave_bytes))
        for index, wave in enumerate(waves):
            results = await asyncio.gather(
                *(self._send_one(record, timeout) for record in wave), return_exceptions=True
            )
            failed = [
                record
                for record, result in zip(wave, results, strict=True)
                if isinstance(result, BaseException)
            ]
            if failed:
                return failed + [record for later in waves[index + 1 :] for record in later]
        return []

    async def _send_one(self, record: SpooledRecord, timeout: float) -> None:
        """Send the record, or raise if it is not acknowledged within ``timeout``. An attempt
        that runs out of time is left running: if the broker takes it late, the spooled copy is
        not sent again."""
        earlier = self._late.pop(record.key, None)
        if earlier is not None:
            await asyncio.wait({earlier})
            if not earlier.cancelled() and earlier.exception() is None:
                return
        attempt = asyncio.ensure_future(self._send_or_park(record))
        await asyncio.wait({attempt}, timeout=timeout)
        if not attempt.done():
            self._late[record.key] = attempt
            attempt.add_done_callback(_retrieve)
            raise TimeoutError
        attempt.result()

    async def _send_or_park(self, record: SpooledRecord) -> None:
        try:
            await self._send_record(record)
        except ApiError as exc:
            if exc.status != 413:
                raise
            # The broker will never take it: park its head with the reason, as for an event
            # too large to send.
            detail = (
                f"the broker refused a message of {len(record.value)} bytes to "
                f"{record.topic}; its first {TOO_LARGE_KEPT_BYTES} bytes are kept"
            )
            value = record.value[:TOO_LARGE_KEPT_BYTES]
            await self._send_record(dead_letter(self._settings, value, TOO_LARGE_REASON, detail))

    async def _send_record(self, record: SpooledRecord) -> None:
        await self._producer.send_and_wait(
            record.topic, record.value, key=record.key, headers=record.headers or None
        )


def _waves(records: list[SpooledRecord], max_bytes: int) -> Iterator[list[SpooledRecord]]:
    wave: list[SpooledRecord] = []
    size = 0
    for record in records:
        if wave and size + len(record.value) > max_bytes:
            yield wave
            wave, size = [], 0
        wave.append(record)
        size += len(record.value)
    if wave:
        yield wave


def _retrieve(attempt: asyncio.Future[None]) -> None:
    """Take a late attempt's outcome, so that a failure no one awaits is not reported as lost."""
    if not attempt.cancelled():
        attempt.exception()
