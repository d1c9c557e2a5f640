"""CVAT's own event shipping, end to end: python-logstash-async configured as CVAT's settings
configure it -> the intake -> Kafka -> ``eventpipe worker`` -> ``cvat.events`` in chDB.

CVAT's Django server cannot run here; its side is the very handler it uses, set up as its
``LOGGING['handlers']['vector']`` does, and log lines rendered as its ``record_server_event``
(server events) and its ``POST /api/events`` view (client events) render them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eventpipe.contracts import (
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_REASON_HEADER,
)
from eventpipe.settings import Settings
from eventpipe_cli.testing.pipeline import wait_until_committed
from ingest_gateway.intake.records import TOO_LARGE_KEPT_BYTES, TOO_LARGE_REASON
from tests.integration.gateway_support import topic_records
from tests.integration.intake_support import (
    cvat_vector_logger,
    intake_accepted,
    running_intake,
    with_intake_port,
)
from tests.integration.worker_support import query, running_worker
from tests.messages import decode_rows

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
SERVER_SCOPES = (
    "create:task",
    "update:job",
    "create:shapes",
    "export:dataset",
    "call:function",
    "send:exception",
    "send:working_time",
)


def server_event(n: int) -> str:
    """A server event as CVAT's ``record_server_event`` renders it."""
    scope = SERVER_SCOPES[n % len(SERVER_SCOPES)]
    payload: dict[str, object] = {"request": {"id": f"req-{n}"}}
    if scope == "send:working_time":
        payload["working_time"] = 1000 + n
    if scope == "send:exception":
        payload["message"] = f"ValueError: bad frame {n}"
    return json.dumps(
        {
            "scope": scope,
            "timestamp": str(moment(n).timestamp()),
            "source": "server",
            "payload": json.dumps(payload),
            "obj_val": f"e{n}",
            "task_id": 100 + n % 3,
            "job_id": 200 + n % 5,
            "project_id": 7,
            "user_id": 10 + n % 4,
            "user_name": f"user{n % 4}",
            "user_email": None,
            "org_id": 3,
            "org_slug": "acme",
            "access_token_id": 55 if n % 2 else None,
            "count": 1,
        }
    )


def client_event(n: int) -> str:
    """A client event as CVAT's ``POST /api/events`` view forwards it (already enriched)."""
    return json.dumps(
        {
            "scope": "zoom:image",
            "obj_name": None,
            "obj_id": None,
            "obj_val": f"e{n}",
            "source": "client",
            "timestamp": str(moment(n).timestamp()),
            "count": None,
            "duration": 12,
            "project_id": 7,
            "task_id": 100,
            "job_id": 200 + n % 5,
            "user_id": 10 + n % 4,
            "user_name": f"user{n % 4}",
            "user_email": "u@example.com",
            "org_id": 3,
            "org_slug": "acme",
            "payload": '{"zoom":1.5}',
        }
    )


def moment(n: int) -> datetime:
    return T0 + timedelta(milliseconds=137 * n)


def rendered(n: int) -> str:
    return client_event(n) if n % 3 == 0 else server_event(n)


@pytest.fixture
def vector_logger(settings: Settings, tmp_path: Path) -> Iterator[logging.Logger]:
    """CVAT's server's ``vector`` logger, pointing at the intake."""
    with cvat_vector_logger(settings, tmp_path / "events.db") as logger:
        yield logger


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_intake_port(settings)


async def events_in_kafka(settings: Settings) -> int:
    records = await topic_records(settings, 1_000_000, timeout=0.5)
    return sum(len(decode_rows(r.value or b"").events) for r in records)


async def wait_for_events_in_kafka(settings: Settings, count: int, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await events_in_kafka(settings)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{found} of {count} events arrived"
    assert found == count, f"{found} events reached Kafka, {count} were logged"


def flush(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        handler.flush()


class SendFailures(logging.Handler):
    """Counts the handler's own reports of a batch it could not deliver (and kept)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "error occurred while sending events" in record.getMessage():
            self.count += 1


@pytest.fixture
def send_failures() -> Iterator[SendFailures]:
    failures = SendFailures()
    # The logger python-logstash-async's worker thread reports to.
    worker_logger = logging.getLogger("LogProcessingWorker")
    worker_logger.addHandler(failures)
    try:
        yield failures
    finally:
        worker_logger.removeHandler(failures)


async def wait_for_send_failure(failures: SendFailures, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not failures.count:
        assert asyncio.get_running_loop().time() < deadline, "the handler never tried to send"
        await asyncio.sleep(0.05)


async def test_every_event_cvat_logs_lands_once_even_across_an_intake_outage(
    settings: Settings,
    vector_logger: logging.Logger,
    send_failures: SendFailures,
    tmp_path: Path,
) -> None:
    before, during, after = range(0, 60), range(60, 100), range(100, 130)
    with running_worker(settings, tmp_path / "worker.log"):
        with running_intake(settings):
            for n in before:
                vector_logger.info(rendered(n))
            flush(vector_logger)
            await wait_for_events_in_kafka(settings, len(before))

        # The intake is down: the handler keeps what it cannot deliver in its SQLite queue.
        for n in during:
            vector_logger.info(rendered(n))
        flush(vector_logger)
        await wait_for_send_failure(send_failures)

        with running_intake(settings):
            for n in after:
                vector_logger.info(rendered(n))
            flush(vector_logger)
            await wait_for_events_in_kafka(settings, 130)
        # Stored once committed; the worker then stops, and its engine can be opened here.
        await wait_until_committed(settings)

    # As CVAT's export and dashboards read the table: no FINAL, so a copy would show.
    rows = query(
        settings,
        "SELECT obj_val, toUnixTimestamp64Milli(timestamp), source, scope, job_id, task_id,"
        " user_id, org_id, access_token_id, payload FROM cvat.events",
    )
    stored = {row[0]: row[1:] for row in rows}
    assert len(rows) == len(stored) == 130
    for n in range(130):
        sent = json.loads(rendered(n))
        ms, source, scope, job_id, task_id, user_id, org_id, token, payload = stored[f"e{n}"]
        assert ms == int(moment(n).timestamp() * 1000)
        assert (source, scope, job_id, task_id) == (
            sent["source"],
            sent["scope"],
            sent["job_id"],
            sent["task_id"],
        )
        assert (user_id, org_id, token, payload) == (
            sent["user_id"],
            sent["org_id"],
            sent.get("access_token_id"),
            sent["payload"],
        )


def annotation_event(n: int, size: int) -> str:
    """A ``create:shapes`` event as CVAT renders it, of about ``size`` bytes: its payload lists
    every shape id, different ones in each event (so compression cannot hide its size)."""
    ids = random.Random(n)
    # Each id takes 9 bytes of the rendered event: 7 digits and ", ".
    shapes = [ids.randrange(10**6, 10**7) for _ in range(size // 9)]
    event = json.loads(server_event(n))
    event.update(scope="create:shapes", obj_name="shape", payload=json.dumps({"shapes": shapes}))
    return json.dumps(event)


async def wait_for_accepted(count: float, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while intake_accepted() < count:
        assert asyncio.get_running_loop().time() < deadline, f"{intake_accepted()} of {count}"
        await asyncio.sleep(0.05)


async def test_12_mb_batches_of_300_kb_annotation_events_are_stored(
    settings: Settings,
    vector_logger: logging.Logger,
    send_failures: SendFailures,
    tmp_path: Path,
) -> None:
    events_per_batch, batches = 40, 3  # 40 events of 300 KB: a 12 MB request
    sent = {f"e{n}": annotation_event(n, 300_000) for n in range(events_per_batch * batches)}
    assert 11_900_000 < sum(map(len, list(sent.values())[:events_per_batch])) < 12_100_000
    with running_worker(settings, tmp_path / "worker.log"), running_intake(settings):
        accepted = intake_accepted()
        for batch in range(batches):
            for n in range(batch * events_per_batch, (batch + 1) * events_per_batch):
                vector_logger.info(sent[f"e{n}"])
            flush(vector_logger)
            # One request per batch: wait for it before logging the next.
            accepted += events_per_batch
            await wait_for_accepted(accepted)
        await wait_until_committed(settings)

    rows = query(settings, "SELECT obj_val, scope, payload FROM cvat.events")
    assert len(rows) == len(sent)
    for obj_val, scope, payload in rows:
        event = json.loads(sent[str(obj_val)])
        assert (scope, payload) == (event["scope"], event["payload"])
    assert send_failures.count == 0


async def test_an_event_too_large_for_kafka_is_dead_lettered_and_the_queue_moves_on(
    settings: Settings, vector_logger: logging.Logger, send_failures: SendFailures
) -> None:
    huge = annotation_event(1, 20 * 1024 * 1024)
    with running_intake(settings):
        vector_logger.info(rendered(0))
        vector_logger.info(huge)
        for n in range(2, 6):
            vector_logger.info(rendered(n))
        flush(vector_logger)
        await wait_for_events_in_kafka(settings, 5)
        # The handler's queue moved on: what is logged next arrives too.
        for n in range(6, 10):
            vector_logger.info(rendered(n))
        flush(vector_logger)
        await wait_for_events_in_kafka(settings, 9)
        [parked] = await topic_records(settings, 1, topic=settings.dead_letter_topic)

    headers = dict(parked.headers)
    assert headers[DEAD_LETTER_REASON_HEADER] == TOO_LARGE_REASON.encode()
    detail = headers[DEAD_LETTER_DETAIL_HEADER].decode()
    assert "create:shapes" in detail and "more than the" in detail, detail
    # Its head is kept, enough to tell which event it was.
    assert parked.value is not None
    assert len(parked.value) == TOO_LARGE_KEPT_BYTES
    assert parked.value.startswith(b'{"scope":"create:shapes"')
    assert b'"obj_val":"e1"' in parked.value
    assert send_failures.count == 0
