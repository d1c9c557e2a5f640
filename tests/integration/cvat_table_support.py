"""``cvat.events`` populated as the processor populates it, for tests that read it as CVAT does.

The rows come from the processor's own code (``build_rows`` and the ClickHouse sink) applied to
both kinds of Kafka message: a batch of CVAT server events from the intake, and ``POST
/api/events`` requests. Between T0 and T0 + 80 min, organization 7 (acme): alice and bob, working
time on jobs 10 and 11 of task 5 in project 2, one exception, two ``load:cvat`` on two platforms.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import orjson
from clickhouse_connect.driver.client import Client

from eventpipe.contracts import Event, Identity, IngestMessage, IntakeMessage, ServerEvent
from eventpipe.settings import Settings
from stream_processors.clickhouse_sink import ClickHouseSink
from stream_processors.rows import build_rows
from tests.messages import ingest_message

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NAIVE_T0 = T0.replace(tzinfo=None)
ALICE = {"user_id": 1, "user_name": "alice", "user_email": "a@example.com"}
BOB = {"user_id": 2, "user_name": "bob", "user_email": None}
ACME = {"org_id": 7, "org_slug": "acme"}


def server_event(scope: str, minutes: float, payload: str, **fields: Any) -> ServerEvent:
    return ServerEvent(
        scope=scope,
        source="server",
        timestamp=T0 + timedelta(minutes=minutes),
        payload=payload,
        **ACME,
        **fields,
    )


def working_time(minutes: float, ms: int, who: dict[str, Any], job_id: int) -> ServerEvent:
    return server_event(
        "send:working_time",
        minutes,
        orjson.dumps({"working_time": ms}).decode(),
        duration=ms,
        count=1,
        job_id=job_id,
        task_id=5,
        project_id=2,
        **who,
    )


SERVER_BATCH = IntakeMessage(
    received_at=T0 + timedelta(hours=3),
    events=[
        working_time(5, 60_000, ALICE, 10),
        working_time(70, 30_000, ALICE, 10),
        working_time(75, 120_000, BOB, 11),
        server_event(
            "send:exception",
            80,
            '{"message":"ValueError: bad frame","stack":"Traceback ..."}',
            count=1,
            **BOB,
        ),
        server_event(
            "create:task", 1, '{"request":{"id":"r1"}}', task_id=5, access_token_id=4, **ALICE
        ),
    ],
)


def client_request(minutes: float, platform: str, who: dict[str, Any]) -> IngestMessage:
    """A ``load:cvat`` event as the gateway enriches it, alone in its request."""
    identity = Identity(**who, **ACME)
    event = Event(
        scope="load:cvat",
        source="client",
        timestamp=T0 + timedelta(minutes=minutes),
        payload=orjson.dumps({"platform": {"name": platform, "version": "1"}}).decode(),
        **who,
        **ACME,
    )
    return ingest_message(identity, [event], received_at=event.timestamp)


def insert(client: Client, messages: list[IngestMessage | IntakeMessage]) -> None:
    asyncio.run(ClickHouseSink(client).insert(build_rows(messages)))


def populate(client: Client) -> None:
    insert(
        client,
        [SERVER_BATCH, client_request(0, "Chrome", ALICE), client_request(62, "Firefox", BOB)],
    )


def cvat_client(data_path: Path, database: str = Settings().clickhouse_database) -> Client:
    """A client connected as CVAT's export connects: ``database`` (``cvat``) as its default."""
    return clickhouse_connect.get_client(dsn=f"chdb://{data_path}", database=database)
