"""Run the gateway on a real port against a real broker, and look at what reached Kafka."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from starlette.types import ASGIApp

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from ingest_gateway.app import create_app
from ingest_gateway.http_protocol import UVICORN_PROTOCOLS
from tests.messages import DecodedRows, decode_rows
from tests.server_processes import wait_until


@dataclass
class RunningGateway:
    url: str
    server: uvicorn.Server


@contextmanager
def running_gateway(settings: Settings, *, wait_ready: bool = True) -> Iterator[RunningGateway]:
    """Serve the app with uvicorn in a thread (its own event loop), so sync clients work too."""
    with serving(create_app(settings)) as gateway:
        if wait_ready:
            wait_ready_status(gateway, 200)
        yield gateway


@contextmanager
def serving(app: ASGIApp) -> Iterator[RunningGateway]:
    """Any ASGI app on a free port of 127.0.0.1, served by uvicorn in a thread."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **UVICORN_PROTOCOLS)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the server started", 20.0)
        yield RunningGateway(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_ready_status(gateway: RunningGateway, status: int, timeout: float = 20.0) -> None:
    def has_status() -> bool:
        return httpx.get(f"{gateway.url}/health/ready").status_code == status

    wait_until(has_status, f"/health/ready answers {status}", timeout)


async def topic_records(
    settings: Settings, expected: int, timeout: float = 10.0, topic: str | None = None
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the events topic (or ``topic``), read from the beginning; waits for
    ``expected`` of them."""
    topic = topic or settings.events_topic
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        # The intake's messages are as large as the events topic takes.
        max_partition_fetch_bytes=settings.max_message_bytes,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def events_topic_size(settings: Settings, topic: str | None = None) -> int:
    """How many records the events topic (or ``topic``) holds: the sum of its end offsets."""
    topic = topic or settings.events_topic
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert partitions, f"topic {topic} does not exist"
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


def decode_message(record: ConsumerRecord[bytes, bytes]) -> DecodedRows:
    return decode_rows(record.value)
