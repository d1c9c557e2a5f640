"""Run the processor worker (``eventpipe worker --role processor``) in a child process, feed its
topic, and read what it committed and stored (chDB), for the tests of the worker and of what the
gateway and the intake send it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from eventpipe.clickhouse import clickhouse_client
from eventpipe.contracts import Event, Identity, IngestMessage
from eventpipe.settings import Settings
from eventpipe.topics import ensure_topics
from eventpipe_cli.testing.pipeline import group_observer, offsets_by_partition
from tests import messages

T0 = datetime(2026, 3, 2, 9, 0, 0, 250000, tzinfo=UTC)
IDENTITY = Identity(
    user_id=5, user_name="bob", user_email="bob@example.com", org_id=2, org_slug="acme"
)


def ingest_message(job_id: int, *offsets_s: int) -> IngestMessage:
    """An enriched request as the gateway produces it."""
    return messages.ingest_message(
        IDENTITY,
        [
            Event(
                scope="click:element",
                timestamp=T0 + timedelta(seconds=s),
                source="client",
                job_id=job_id,
                task_id=20,
                user_id=IDENTITY.user_id,
                user_name=IDENTITY.user_name,
                user_email=IDENTITY.user_email,
                org_id=IDENTITY.org_id,
                org_slug=IDENTITY.org_slug,
                payload='{"n":1}',
            )
            for s in offsets_s
        ],
        received_at=T0 + timedelta(minutes=5),
    )


async def produce(settings: Settings, values: list[bytes]) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.events_topic, value, key=b"org:2")
    finally:
        await producer.stop()


async def partition_offsets(settings: Settings) -> tuple[dict[int, int], dict[int, int]]:
    """The processor group's committed offset and the end offset of each events partition."""
    async with group_observer(settings) as observer:
        return await offsets_by_partition(observer, settings)


async def committed_and_end(settings: Settings) -> tuple[int, int]:
    """Offsets the processor group committed, and messages in the events topic (summed)."""
    committed, end = await partition_offsets(settings)
    return sum(committed.values()), sum(end.values())


@contextmanager
def running_worker(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``eventpipe worker --role processor``; stopped with SIGTERM on exit unless already gone."""
    with log.open("ab") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "eventpipe_cli.cli", "worker", "--role", "processor"],
            env={**os.environ, **settings.to_env()},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def query(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    with clickhouse_client(settings) as client:
        return [tuple(row) for row in client.query(sql).result_rows]
