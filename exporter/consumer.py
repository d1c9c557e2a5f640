"""Consume export requests from Kafka and run them, a bounded number at a time.

A plain aiokafka consumer in its own group (``exporter_group_id``), so exporters scale apart from
the event processor. An offset is committed after its export ends (finished or failed); an
export cut short by a crash is delivered again and redone from the start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from clickhouse_connect.driver.client import Client

from eventpipe.backoff import Backoff
from eventpipe.contracts import ExportRequest, export_request_decoder
from eventpipe.message_decoding import Undecodable, decode_versioned
from eventpipe.object_store import ObjectStore
from eventpipe.settings import Settings
from exporter import metrics
from exporter.export_job import ExportCancelled, ExportWithdrawn, JobOptions, run_export
from exporter.offsets import OffsetTracker

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
RERUN_BACKOFF = Backoff(initial=0.5, maximum=30.0)


@dataclass(eq=False)
class ExportConsumer:
    settings: Settings
    store: ObjectStore
    # Each export opens its own ClickHouse connection: a streaming result holds its connection
    # for the whole export, which must not block other exports or the processor.
    connect: Callable[[], Client]
    options: JobOptions
    max_concurrent: int = 2
    _tracker: OffsetTracker[TopicPartition] = field(default_factory=OffsetTracker, init=False)
    _jobs: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _cancel: threading.Event = field(default_factory=threading.Event, init=False)

    async def run(self, stop_event: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.settings.exporter_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        consumer.subscribe([self.settings.exports_topic], listener=_Forget(self._tracker))
        await consumer.start()
        try:
            while not stop_event.is_set():
                await self._poll(consumer)
                await self._commit(consumer)
        finally:
            # Running exports go back to the queue; their offsets stay uncommitted, so the next
            # owner of the partition runs them again.
            self._cancel.set()
            await asyncio.gather(*self._jobs, return_exceptions=True)
            await self._commit(consumer)
            await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        free = self.max_concurrent - len(self._jobs)
        # Paused partitions keep the consumer polling (and so in its group) while it is busy.
        if free <= 0:
            consumer.pause(*consumer.assignment())
        else:
            consumer.resume(*consumer.assignment())
        batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=max(free, 1))
        for partition, records in batch.items():
            for record in records:
                self._tracker.started(partition, record.offset)
                job = asyncio.create_task(self._run_job(partition, record))
                self._jobs.add(job)
                job.add_done_callback(self._jobs.discard)

    async def _run_job(
        self, partition: TopicPartition, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        try:
            request = decode_versioned(record.value, export_request_decoder)
        except Undecodable as exc:
            # A message no exporter can read never will; committing past it keeps the queue moving.
            metrics.UNREADABLE_REQUESTS.labels(exc.reason).inc()
            log.error(
                "skipping unreadable export request at %s@%d: %s", partition, record.offset, exc
            )
        else:
            try:
                await asyncio.to_thread(self._export, request)
            except ExportCancelled:
                log.info("export %s handed back: the exporter is stopping", request.query_id)
                return
            except ExportWithdrawn:
                log.info("export %s was cancelled by its owner", request.query_id)
        self._tracker.ended(partition, record.offset)

    def _export(self, request: ExportRequest) -> None:
        """Run the export until it records its outcome, redoing it with capped backoff.

        ``run_export`` records every failure of the export itself; what escapes it is the object
        store refusing the record (or no ClickHouse connection). Given up then, the export would
        keep its last record, "queued" or "running", until the sweeper fails it long after.
        """
        for delay in RERUN_BACKOFF.delays():
            try:
                client = self.connect()
                try:
                    run_export(request, client, self.store, self.options, self._cancel)
                    return
                finally:
                    client.close()
            except (ExportCancelled, ExportWithdrawn):
                raise
            except Exception as exc:
                log.warning(
                    "export %s did not reach its end (%r); running it again in %.1f s",
                    request.query_id,
                    exc,
                    delay,
                )
            if self._cancel.wait(delay):
                raise ExportCancelled

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        offsets = self._tracker.committable()
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # The partitions moved to another exporter, which redoes these exports: harmless.
            log.warning("could not commit export offsets %s: %s", offsets, exc)


class _Forget(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, tracker: OffsetTracker[TopicPartition]) -> None:
        self.tracker = tracker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.tracker.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None
