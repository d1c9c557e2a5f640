"""The processor worker end to end: real broker, ``eventpipe worker`` in a child process, chDB.

The embedded ClickHouse path admits one process at a time, so each test reads the table after the
worker has stopped. A worker is known to be done when its group's committed offsets reach the end
of the events topic: the agent acks a message only after its rows are inserted.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError

from eventpipe.clickhouse import clickhouse_client
from eventpipe.contracts import IngestMessage, ingest_message_encoder
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.testing.pipeline import wait_until_committed
from eventpipe_cli.worker import run_worker
from stream_processors.faust_app import COMMIT_INTERVAL_SECONDS
from stream_processors.ingest_agent import INSERT_BACKOFF
from stream_processors.migrations import apply_migrations
from tests.integration.worker_support import (
    committed_and_end,
    ingest_message,
    produce,
    query,
    running_worker,
)
from tests.messages import flat_rows_message, rows_message


async def test_worker_stores_enriched_and_working_time_rows(
    settings: Settings, tmp_path: Path
) -> None:
    first = ingest_message(31, 0, 4, 10)  # 4 s + 6 s of work on job 31
    second = ingest_message(32, 0)  # a single event: no working time
    await produce(settings, [ingest_message_encoder.encode(m) for m in (first, second)])

    with running_worker(settings, tmp_path / "worker.log") as worker:
        await wait_until_committed(settings)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0

    rows = query(
        settings,
        "SELECT request_id, event_seq, scope, source, toUnixTimestamp64Milli(timestamp), duration,"
        " count, job_id, task_id, user_id, user_name, user_email, org_id, org_slug, payload"
        " FROM events ORDER BY job_id, event_seq",
    )
    t0_ms = 1772442000250  # 2026-03-02T09:00:00.250Z
    identity = (5, "bob", "bob@example.com", 2, "acme")

    def clicked(message: IngestMessage, seq: int, at_ms: int) -> tuple[object, ...]:
        job_id = message.events[0].job_id
        return (message.request_id, seq, "click:element", "client", at_ms, 0, None, job_id, 20,
                *identity, '{"n":1}')  # fmt: skip

    assert rows == [
        clicked(first, 0, t0_ms),
        clicked(first, 1, t0_ms + 4_000),
        clicked(first, 2, t0_ms + 10_000),
        (first.request_id, 3, "send:working_time", "server", t0_ms, 10_000, 1, 31, 20,
         *identity,
         f'{{"working_time":10000,"request":{{"id":"{first.request_id}","user_agent":null}}}}'),
        clicked(second, 0, t0_ms),
    ]  # fmt: skip


async def test_during_an_upgrade_both_formats_are_stored_alike(
    settings: Settings, tmp_path: Path
) -> None:
    # Gateways older than the workers still send format 1 (the decoded request) or format 2 (a
    # line per row); an upgraded one sends format 3. The worker stores them all, the same way.
    oldest, old, new = ingest_message(31, 0, 4), ingest_message(32, 0, 4), ingest_message(33, 0, 4)
    await produce(
        settings,
        [ingest_message_encoder.encode(oldest), flat_rows_message(old), rows_message(new)],
    )

    with running_worker(settings, tmp_path / "worker.log"):
        await wait_until_committed(settings)

    rows = query(
        settings,
        "SELECT job_id, event_seq, scope, duration, user_name FROM events"
        " ORDER BY job_id, event_seq",
    )
    assert rows == [
        (job_id, seq, scope, duration, "bob")
        for job_id in (31, 32, 33)
        for seq, scope, duration in [
            (0, "click:element", 0),
            (1, "click:element", 0),
            (2, "send:working_time", 4_000),
        ]
    ]


async def test_a_message_clickhouse_refuses_is_dead_lettered_and_the_others_stored(
    settings: Settings, tmp_path: Path
) -> None:
    good = [ingest_message(job_id, 0, 1) for job_id in (41, 42, 43)]
    refused = rows_message(ingest_message(44, 0)).replace(
        b'"timestamp":"2026', b'"timestamp":"not a time 2026', 1
    )
    values = [rows_message(message) for message in good]
    values.insert(1, refused)
    await produce(settings, values)

    with running_worker(settings, tmp_path / "worker.log"):
        await wait_until_committed(settings)

    [parked] = await dead_letters(settings)
    headers = {name: value.decode() for name, value in parked.headers}
    assert parked.value == refused
    assert headers["eventpipe-dlq-reason"] == "refused-by-clickhouse"
    assert "CANNOT_PARSE_DATETIME" in headers["eventpipe-dlq-detail"]
    # Each good message once (two events and their working time), though its batch was retried.
    stored = query(settings, "SELECT job_id, count() FROM events GROUP BY job_id ORDER BY job_id")
    assert stored == [(41, 3), (42, 3), (43, 3)]


async def dead_letters(settings: Settings) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        settings.dead_letter_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000, max_records=10)
    finally:
        await consumer.stop()
    return [record for records in batches.values() for record in records]


async def test_undecodable_messages_go_to_the_dead_letter_topic(
    settings: Settings, tmp_path: Path
) -> None:
    unknown_version = msgspec.structs.replace(ingest_message(40, 0), version=99)
    bad = {
        "bad-json": b"{not json",
        "wrong-schema": orjson.dumps({"request_id": "nope", "events": 3}),
        "unknown-version": ingest_message_encoder.encode(unknown_version),
    }
    good = ingest_message(41, 0, 1)
    await produce(settings, [*bad.values(), ingest_message_encoder.encode(good)])

    with running_worker(settings, tmp_path / "worker.log"):
        await wait_until_committed(settings)

    parked = await dead_letters(settings)
    by_reason = {dict(r.headers)["eventpipe-dlq-reason"].decode(): r for r in parked}
    assert sorted(by_reason) == sorted(bad)
    for reason, record in by_reason.items():
        headers = {name: value.decode() for name, value in record.headers}
        assert record.value == bad[reason]
        assert headers["eventpipe-source-topic"] == settings.events_topic
        assert int(headers["eventpipe-source-partition"]) in range(settings.topic_partitions)
        assert int(headers["eventpipe-source-offset"]) >= 0
        assert headers["eventpipe-dlq-detail"]
    assert (
        "version 99" in dict(by_reason["unknown-version"].headers)["eventpipe-dlq-detail"].decode()
    )

    stored = query(settings, "SELECT request_id, scope FROM events ORDER BY event_seq")
    assert stored == [
        (good.request_id, "click:element"),
        (good.request_id, "click:element"),
        (good.request_id, "send:working_time"),
    ]


async def test_a_batch_whose_insert_failed_is_redelivered_not_lost(
    settings: Settings, tmp_path: Path
) -> None:
    # A real failure: the migrations are applied, then the events table is renamed away, so the
    # worker's migrations have nothing to do and every insert fails with UNKNOWN_TABLE.
    with clickhouse_client(settings) as client:
        apply_migrations(client)
        client.command("RENAME TABLE events TO events_away")
    sent = [ingest_message(50 + i, 0, 1, 2) for i in range(6)]
    await produce(settings, [ingest_message_encoder.encode(m) for m in sent])
    log = tmp_path / "worker.log"

    with running_worker(settings, log) as worker:
        # The third failed attempt of the same batch comes 0.5 + 1 s of backoff after the first,
        # over seven of Faust's commit intervals: the committed offsets must not have moved.
        deadline = time.monotonic() + 60
        while b"(attempt 3)" not in log.read_bytes():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.2)
        assert sum(INSERT_BACKOFF.delay(n) for n in (1, 2)) > COMMIT_INTERVAL_SECONDS * 7
        assert await committed_and_end(settings) == (0, len(sent))
        worker.kill()
        worker.wait()

    with clickhouse_client(settings) as client:
        client.command("RENAME TABLE events_away TO events")

    with running_worker(settings, log):
        await wait_until_committed(settings)

    counts = query(
        settings,
        "SELECT request_id, scope, count() FROM events GROUP BY request_id, scope",
    )
    assert sorted(counts) == sorted(
        [(m.request_id, "click:element", 3) for m in sent]
        + [(m.request_id, "send:working_time", 1) for m in sent]
    )


def test_a_worker_that_cannot_reach_the_broker_releases_clickhouse_and_its_loop(
    tmp_path: Path,
) -> None:
    """Topic creation fails after the ClickHouse client and the event loop are open."""
    settings = Settings(
        clickhouse_dsn=f"chdb://{tmp_path / 'worker'}",
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        worker_nice=0,
    )
    try:
        with pytest.raises(KafkaError):
            run_worker(settings, "processor")
        assert asyncio.get_event_loop_policy().get_event_loop().is_closed()
    finally:
        asyncio.set_event_loop(None)  # the worker set its loop as this thread's
    # chDB hosts one path per process: another opens only once the worker's client is closed.
    other = clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'other'}"))
    try:
        assert other.query("SELECT 1").result_rows == [(1,)]
    finally:
        other.close()
