"""Synthetic traffic for the tests and the benchmarks: request bodies like those of CVAT
annotation sessions, and the Kafka messages the gateway would produce for them, sent by a
producer set up as the gateway's."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import orjson
from aiokafka import AIOKafkaProducer

from eventpipe.contracts import (
    ClientEventsRequest,
    Identity,
    IngestMessage,
    tenant_key,
)
from eventpipe.kafka_compression import producer_compression
from eventpipe.settings import Settings
from eventpipe.table_rows import request_rows
from ingest_gateway.producer import PRODUCER_BATCH_BYTES

# The users ``ingest_messages`` spreads the messages over, ``bench0`` to ``bench7``.
TENANTS = 8

_SCOPES = (
    "change:frame",
    "draw:object",
    "resize:object",
    "drag:object",
    "click:element",
    "zoom:image",
    "save:job",
)


def request_body(request_index: int, events_per_request: int, rng: random.Random) -> bytes:
    """One ``POST /api/events`` body of about 320 bytes an event, like the CVAT web client's."""
    job_id = 1000 + request_index % 97
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=request_index)
    events = []
    for i in range(events_per_request):
        scope = _SCOPES[rng.randrange(len(_SCOPES))]
        events.append(
            {
                "scope": scope,
                "obj_name": "shape" if scope.endswith(":object") else None,
                "obj_id": rng.randrange(1, 10**6),
                "obj_val": None,
                "source": "client",
                "timestamp": (start + timedelta(milliseconds=40 * i)).isoformat(),
                "count": 1,
                "duration": rng.randrange(0, 500) if scope == "change:frame" else 0,
                "project_id": 7,
                "task_id": 100 + job_id // 10,
                "job_id": job_id,
                "payload": orjson.dumps(
                    {"frame": rng.randrange(0, 5000), "label": "car", "points": [1.5, 2.5, 30.0]}
                ).decode(),
            }
        )
    body = {
        "events": events,
        "previous_event": None,
        "timestamp": (start + timedelta(milliseconds=40 * events_per_request)).isoformat(),
    }
    return orjson.dumps(body)


def ingest_messages(bodies: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The Kafka messages the gateway would produce for these bodies, from ``TENANTS`` users."""
    decoder = msgspec.json.Decoder(ClientEventsRequest)
    now = datetime.now(UTC)
    messages = []
    for i, body in enumerate(bodies):
        request = decoder.decode(body)
        identity = Identity(user_id=1 + i % TENANTS, user_name=f"bench{i % TENANTS}")
        message = IngestMessage(
            request_id=uuid.uuid4(),
            received_at=now,
            identity=identity,
            events=list(request.events),
            previous_event=request.previous_event,
        )
        rows = request_rows(message)
        if rows is not None:
            messages.append((tenant_key(identity), rows.message()))
    return messages


@contextlib.asynccontextmanager
async def gateway_like_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer set up as the gateway's (aiokafka's default batch is smaller than a message)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        compression_type=producer_compression(settings),
        max_batch_size=PRODUCER_BATCH_BYTES,
        max_request_size=settings.max_message_bytes,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def produce_all(
    producer: AIOKafkaProducer,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    partitions: list[int] | None = None,
) -> None:
    """Produce every message; return once the broker acknowledged them all."""
    futures = [
        await producer.send(topic, value, key=key, partition=partitions[i] if partitions else None)
        for i, (key, value) in enumerate(messages)
    ]
    await asyncio.gather(*futures)
