"""The gateway's Kafka producer: one message per accepted request, acknowledged before the 201.

The broker may be down when the gateway starts or go away later. A background task connects,
(re)creates the topics when a broker came back empty, and probes the broker every second; that
probe is what ``/health/ready`` reports, and requests are refused with 503 while it fails instead
of queueing behind a dead broker. Every wait is bounded by ``produce_timeout_seconds``, and bytes
not yet acknowledged by ``producer_buffer_bytes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from starlette.requests import Request

from eventpipe.kafka_compression import producer_compression
from eventpipe.settings import Settings
from eventpipe.topics import ensure_topics
from ingest_gateway import errors, metrics
from ingest_gateway.errors import ApiError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS: Final = 1
PROBE_INTERVAL_SECONDS: Final = 1.0
# Per-partition batch. Only one batch per partition is in flight, and aiokafka's default (16 KiB)
# is smaller than one typical request, which would make every request wait for the previous one.
PRODUCER_BATCH_BYTES: Final = 1024 * 1024


def unavailable(error: str) -> ApiError:
    """The broker cannot take events now: ask again soon, it usually comes back quickly."""
    return errors.unavailable(error, RETRY_AFTER_SECONDS)


class EventProducer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._max_message_bytes = settings.max_message_bytes
        # Read here, so that an unknown codec stops the gateway at start, not in the background.
        self._compression = producer_compression(settings)
        self._producer: AIOKafkaProducer | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._unacknowledged_bytes = 0
        self.ready = False
        self._reported_down = False

    async def start(self) -> None:
        """Return at once; connecting happens in the background so a dead broker is no crash."""
        self._supervisor = asyncio.create_task(self._supervise(), name="kafka-supervisor")

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._producer is not None:
            # stop() flushes pending messages, which never ends while the broker is down.
            with contextlib.suppress(TimeoutError, KafkaError):
                await asyncio.wait_for(
                    self._producer.stop(), self._settings.produce_timeout_seconds
                )

    async def produce(self, key: bytes, value: bytes) -> None:
        """Return once the broker acknowledged the message; else raise a 503 (or 413)."""
        await self.send_and_wait(self._settings.events_topic, value, key=key)

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """:meth:`produce` to any topic; named like aiokafka's, so that code written for an
        ``AIOKafkaProducer`` (``exports.jobs.submit_export``) gets these bounds too."""
        producer = self._producer
        if producer is None or not self.ready:
            raise unavailable("the event broker is unavailable; retry shortly")
        size = len(key) + len(value)
        if size > self._max_message_bytes:
            raise _too_large(size)
        if self._unacknowledged_bytes + size > self._settings.producer_buffer_bytes:
            raise unavailable("the gateway holds too many unacknowledged events; retry shortly")
        self._unacknowledged_bytes += size
        metrics.produced(size)
        delivery: asyncio.Future[Any] | None = None
        try:
            # send() alone can wait forever for metadata while brokers are down (aiokafka #1101).
            async with asyncio.timeout(self._settings.produce_timeout_seconds):
                delivery = await producer.send(topic, value, key=key, headers=headers)
                # Shielded so that a timeout leaves the delivery running: its bytes stay counted
                # until the broker answers or aiokafka expires the batch.
                await asyncio.shield(delivery)
        except TimeoutError:
            raise unavailable("the event broker did not acknowledge in time") from None
        except MessageSizeTooLargeError:
            raise _too_large(size) from None
        except KafkaError as exc:
            log.warning("producing to %s failed: %r", topic, exc)
            raise unavailable("the event broker did not take the events; retry shortly") from None
        finally:
            if delivery is None:
                self._release(size)
            else:
                delivery.add_done_callback(lambda done: self._settled(done, size))

    def _settled(self, delivery: asyncio.Future[Any], size: int) -> None:
        self._release(size)
        if not delivery.cancelled():
            delivery.exception()  # retrieved here, so a late failure is not reported as lost

    def _release(self, size: int) -> None:
        self._unacknowledged_bytes -= size
        metrics.acknowledged(size)

    async def _supervise(self) -> None:
        while True:
            try:
                if self._producer is None:
                    await self._connect()
                await self._probe()
                self._mark(None)
            except (KafkaError, OSError, TimeoutError) as exc:
                self._mark(repr(exc))
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)

    async def _connect(self) -> None:
        async with asyncio.timeout(self._settings.produce_timeout_seconds):
            await ensure_topics(self._settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=self._settings.kafka_idempotence,
            max_request_size=self._max_message_bytes,
            max_batch_size=PRODUCER_BATCH_BYTES,
            compression_type=self._compression,
            # Batches not delivered by then fail instead of arriving long after the 503.
            request_timeout_ms=int(self._settings.produce_timeout_seconds * 1000),
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def _probe(self) -> None:
        assert self._producer is not None
        async with asyncio.timeout(self._settings.produce_timeout_seconds):
            metadata = await self._producer.client.fetch_all_metadata()
            if self._settings.events_topic not in metadata.topics():
                # An in-memory broker restarts empty; recreate the topics before accepting again.
                await ensure_topics(self._settings)

    def _mark(self, error: str | None) -> None:
        """Record the probe's outcome, logging only changes (the probe runs every second)."""
        if error is None and not self.ready:
            log.info("connected to the event broker at %s", self._settings.kafka_bootstrap_servers)
        elif error is not None and not self._reported_down:
            log.warning("the event broker is unavailable: %s", error)
        self._reported_down = error is not None
        self.ready = error is None


def _too_large(size: int) -> ApiError:
    return ApiError(
        413,
        f"the enriched events take {size} bytes, more than the broker accepts in one message; "
        "send fewer events per request",
    )


def producer_of(request: Request) -> EventProducer:
    producer: EventProducer = request.app.state.producer
    return producer
