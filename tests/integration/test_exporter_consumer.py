"""End to end on real engines: the gateway's functions, Kafka, the exporter, ClickHouse, a store."""

from __future__ import annotations

import asyncio
import csv
import io
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from clickhouse_connect.driver.client import Client
from prometheus_client import REGISTRY

from eventpipe.contracts import (
    CONTRACT_VERSION,
    ExportFilter,
    export_request_encoder,
)
from eventpipe.export_records import (
    ExportState,
    ExportStatus,
    cancel_key,
    mark_cancelled,
    owned_statuses,
)
from eventpipe.settings import Settings
from eventpipe.stores import ObjectStore, open_store
from exporter.consumer import ExportConsumer
from exporter.export_job import JobOptions
from exporter.service import connection_factory, run_exporter
from ingest_gateway.exports.jobs import (
    get_export_status,
    open_export_download,
    presign_export,
    submit_export,
)
from tests.messages import export_request

Insert = Callable[[Client, list[dict[str, Any]]], None]
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
FILTER = ExportFilter(since=T0, until=T0 + timedelta(hours=1), user_id=7)


@pytest.fixture(params=["filesystem", "s3"])
def export_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "filesystem":
        return settings
    return settings.with_overrides(
        s3_endpoint=request.getfixturevalue("s3_endpoint"),
        s3_bucket=f"exports-{uuid.uuid4().hex[:12]}",
        s3_access_key="t",
        s3_secret_key="t",
    )


async def wait_until_ended(store: ObjectStore, query_id: uuid.UUID) -> ExportStatus:
    for _ in range(600):
        status = await get_export_status(store, query_id)
        assert status is not None
        if status.state.terminal:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"export {query_id} did not end: {status}")


async def committed_offsets(settings: Settings) -> int:
    """The sum of the exporter group's committed offsets on the exports topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=settings.exporter_group_id
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(settings.exports_topic, p) for p in range(settings.topic_partitions)
        ]
        return sum([await consumer.committed(partition) or 0 for partition in partitions])
    finally:
        await consumer.stop()


async def test_a_submitted_export_is_run_published_and_committed(
    export_settings: Settings, events_clickhouse: Client, insert_events: Insert
) -> None:
    insert_events(
        events_clickhouse,
        [
            {"scope": "load:job", "timestamp": T0 + timedelta(seconds=2), "user_id": 7},
            {"scope": "save:job", "timestamp": T0 + timedelta(seconds=1), "user_id": 7},
            {"scope": "debug:info", "timestamp": T0, "user_id": 8},
        ],
    )
    store = await asyncio.to_thread(open_store, export_settings)
    stop = asyncio.Event()
    exporter = asyncio.create_task(
        run_exporter(export_settings, events_clickhouse, stop, sweep_interval=0.2)
    )
    producer = AIOKafkaProducer(bootstrap_servers=export_settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        query_id = await submit_export(export_settings, store, producer, 7, FILTER, "mine.csv")
        queued = await get_export_status(store, query_id)
        assert queued is not None and queued.owner_user_id == 7

        status = await wait_until_ended(store, query_id)
        assert status.state is ExportState.FINISHED, status.error
        assert (status.rows, status.filename) == (2, "mine.csv")

        data = b"".join(await open_export_download(store, status))
        rows = list(csv.reader(io.StringIO(data.decode())))
        assert [row[0] for row in rows] == ["scope", "save:job", "load:job"]
        assert status.size == len(data)

        url = await presign_export(store, status, timedelta(minutes=5))
        if export_settings.s3_endpoint:
            assert url is not None
            with urllib.request.urlopen(url) as response:
                assert response.read() == data
        else:
            assert url is None
    finally:
        stop.set()
        await exporter
        await producer.stop()
    assert await committed_offsets(export_settings) == 1


async def test_a_running_exporter_stops_when_cancelled(
    settings: Settings, events_clickhouse: Client
) -> None:
    store = await asyncio.to_thread(open_store, settings)
    exporter = asyncio.create_task(run_exporter(settings, events_clickhouse))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        query_id = await submit_export(settings, store, producer, 7, FILTER, "a.csv")
        # It is consuming: the export it was handed ends.
        assert (await wait_until_ended(store, query_id)).state is ExportState.FINISHED
    finally:
        await producer.stop()
    exporter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(exporter, timeout=10)


async def test_a_refused_request_fails_the_export_it_recorded(settings: Settings) -> None:
    store = await asyncio.to_thread(open_store, settings)
    # The request message is larger than this producer may send, so aiokafka refuses it.
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, max_request_size=64
    )
    await producer.start()
    try:
        with pytest.raises(MessageSizeTooLargeError):
            await submit_export(settings, store, producer, 7, FILTER, "mine.csv")
    finally:
        await producer.stop()
    # Its owner finds it, failed with the reason, among their requests.
    [status] = await asyncio.to_thread(list, owned_statuses(store, 7))
    assert status.state is ExportState.FAILED and status.error
    assert await get_export_status(store, status.query_id) == status


def unreadable_count(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("eventpipe_export_requests_unreadable_total", {"reason": reason})
        or 0.0
    )


async def test_unreadable_requests_are_counted_and_skipped_without_blocking_commits(
    settings: Settings,
    events_clickhouse: Client,
    insert_events: Insert,
    caplog: pytest.LogCaptureFixture,
) -> None:
    insert_events(events_clickhouse, [{"scope": "load:job", "timestamp": T0, "user_id": 7}])
    store = await asyncio.to_thread(open_store, settings)
    future = export_request(
        FILTER, owner_user_id=7, filename="future.csv", version=CONTRACT_VERSION + 1
    )
    bad = {
        "bad-json": b"\x00not json at all",
        "empty": b"",
        "unknown-version": export_request_encoder.encode(future),
        "wrong-schema": b'{"query_id": "x"}',
    }
    before = {reason: unreadable_count(reason) for reason in bad}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    stop = asyncio.Event()
    exporter = asyncio.create_task(run_exporter(settings, events_clickhouse, stop))
    try:
        # One key: every message lands on one partition, where each bad one comes before the
        # good export, so that export's commit proves none of them holds the partition back.
        for value in bad.values():
            await producer.send_and_wait(settings.exports_topic, value, key=b"same")
        good = await submit_export(settings, store, _SameKey(producer), 7, FILTER, "good.csv")
        status = await wait_until_ended(store, good)
        assert (status.state, status.rows) == (ExportState.FINISHED, 1)
    finally:
        stop.set()
        await exporter
        await producer.stop()
    assert await committed_offsets(settings) == len(bad) + 1
    assert {reason: unreadable_count(reason) - before[reason] for reason in bad} == dict.fromkeys(
        bad, 1.0
    )
    skipped = [r.getMessage() for r in caplog.records if "unreadable export request" in r.message]
    assert len(skipped) == len(bad)
    assert not objects_left_by(store, future.query_id)


class _SameKey:
    """A producer that sends every message with one key, so they share a partition."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes) -> object:
        return await self.producer.send_and_wait(topic, value, key=b"same")


def objects_left_by(store: ObjectStore, query_id: uuid.UUID) -> list[str]:
    """Every object the export ``query_id`` left in the store."""
    return [info.key for info in store.list(f"exports/{query_id}")]


async def test_a_running_export_its_owner_cancels_stops_publishes_nothing_and_is_committed(
    settings: Settings, events_clickhouse: Client
) -> None:
    # About 90 MB of CSV: the export runs long enough to be cancelled while it uploads.
    events_clickhouse.command(
        "INSERT INTO events (scope, source, timestamp, user_id, obj_val)"
        " SELECT 'load:job', 'client', {t0:DateTime64(3, 'UTC')} + toIntervalMillisecond(number),"
        " 7, repeat('x', 200) FROM numbers(400000)",
        parameters={"t0": T0},
    )
    store = await asyncio.to_thread(open_store, settings)
    consumer = ExportConsumer(
        settings,
        store,
        connection_factory(settings, events_clickhouse),
        JobOptions(ttl=timedelta(hours=1), max_threads=1, progress_every=0.05),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        query_id = await submit_export(settings, store, producer, 7, FILTER, "big.csv")

        async def running_export() -> bool:
            status = await get_export_status(store, query_id)
            assert status is not None and not status.state.terminal, status
            return status.state is ExportState.RUNNING

        await eventually(running_export)
        await asyncio.to_thread(mark_cancelled, store, query_id)  # what the gateway's cancel does

        async def only_the_marker_left() -> bool:
            return objects_left_by(store, query_id) == [cancel_key(query_id)]

        await eventually(only_the_marker_left)

        async def committed() -> bool:
            return await committed_offsets(settings) == 1

        # The withdrawn export's offset is committed like that of an export that ended.
        await eventually(committed)
    finally:
        stop.set()
        await running
        await producer.stop()
    assert await committed_offsets(settings) == 1
    assert objects_left_by(store, query_id) == [cancel_key(query_id)]


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"{condition.__name__} never held"
        await asyncio.sleep(0.01)
