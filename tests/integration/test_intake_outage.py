"""CVAT's workers ship their events with the synchronous handler, which keeps nothing: the intake
must not lose one while the broker is away, nor when it restarts meanwhile.

The handler is python-logstash-async's ``SynchronousLogstashHandler`` configured as CVAT's
settings configure it for its workers; the broker is a real one on a port of this test's own,
stopped and started again (it keeps nothing, so the events stored before the outage are in
ClickHouse before it stops), and ``eventpipe worker`` stores what arrives (one worker before the
outage, a new one after: the broker that comes back has none of the old one's group).
"""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import EmbeddedBroker, free_port, start_broker
from tests.integration.delivery_support import eventually
from tests.integration.gateway_support import topic_records
from tests.integration.intake_support import cvat_vector_logger, running_intake, with_intake_port
from tests.integration.metrics_support import scrape, value
from tests.integration.test_intake_cvat_handler import moment, rendered
from tests.integration.worker_support import query, running_worker
from tests.messages import decode_rows

BEFORE, DURING, AFTER = range(0, 20), range(20, 80), range(80, 100)


class HandlerErrors:
    """Records the synchronous handler could not deliver: it reports each through its
    ``handleError`` (to stderr) and forgets it."""

    def __init__(self, logger: logging.Logger) -> None:
        self.lost: list[str] = []
        for handler in logger.handlers:
            handler.handleError = self._lost  # type: ignore[method-assign]

    def _lost(self, record: logging.LogRecord) -> None:
        self.lost.append(record.getMessage())


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A broker of this test's own, which it stops and starts.
    return with_intake_port(settings).with_overrides(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}"
    )


@pytest.fixture
def broker_control(settings: Settings) -> Iterator[list[EmbeddedBroker]]:
    port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    brokers = [start_broker(port=port)]
    yield brokers
    for broker in brokers:
        broker.stop()


def spooled_batches() -> float:
    return REGISTRY.get_sample_value("eventpipe_intake_spool_batches") or 0


async def wait_for_rows(worker: Settings, count: int) -> None:
    """Wait until the running worker inserted ``count`` rows, by its own counter. (Its committed
    offsets say the same on a broker that kept running; a restarted embedded broker can report
    them short.)"""

    def inserted() -> float:
        try:
            samples = scrape(f"http://127.0.0.1:{worker.metrics_port}/metrics")
        except httpx.HTTPError:
            return 0  # not serving yet
        return value(samples, "eventpipe_rows_inserted_total")

    await eventually(lambda: inserted() >= count, f"{count} rows inserted", timeout=60)


def ship(logger: logging.Logger, events: range) -> None:
    for n in events:
        logger.info(rendered(n))


@pytest.mark.parametrize("restart_intake", [False, True], ids=["outage", "intake-restart"])
async def test_no_event_of_cvats_workers_is_lost_while_the_broker_is_away(
    settings: Settings,
    broker_control: list[EmbeddedBroker],
    tmp_path: Path,
    restart_intake: bool,
) -> None:
    port = int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1])
    worker = settings.with_overrides(metrics_port=free_port())
    with (
        ExitStack() as intake,
        cvat_vector_logger(settings, tmp_path / "events.db", "SynchronousLogstashHandler") as log,
    ):
        errors = HandlerErrors(log)
        intake.enter_context(running_intake(settings))
        with running_worker(worker, tmp_path / "worker-1.log"):
            ship(log, BEFORE)
            await wait_for_rows(worker, len(BEFORE))

        broker_control[0].stop()
        ship(log, DURING[:30])
        assert spooled_batches() == 30
        if restart_intake:
            intake.close()
            intake.enter_context(running_intake(settings, wait_ready=False))
            assert spooled_batches() == 30  # found again on disk
        ship(log, DURING[30:])
        assert spooled_batches() == len(DURING)

        broker_control.append(start_broker(port=port))
        with running_worker(worker, tmp_path / "worker-2.log"):
            await eventually(lambda: spooled_batches() == 0, "the spool to drain", timeout=60)
            ship(log, AFTER)
            await wait_for_rows(worker, len(DURING) + len(AFTER))
    assert errors.lost == []

    # Stored once each, as CVAT's export and dashboards read the table (no FINAL).
    rows = query(
        settings,
        "SELECT obj_val, toUnixTimestamp64Milli(timestamp), scope, received_at FROM cvat.events",
    )
    stored = {str(obj_val): row for obj_val, *row in rows}
    assert len(rows) == len(stored) == len(BEFORE) + len(DURING) + len(AFTER)
    for n in [*BEFORE, *DURING, *AFTER]:
        ms, scope, _ = stored[f"e{n}"]
        assert (ms, scope) == (int(moment(n).timestamp() * 1000), json.loads(rendered(n))["scope"])
    # In the order CVAT sent them: a spooled event keeps the time the intake took it.
    received = [stored[f"e{n}"][2] for n in [*BEFORE, *DURING, *AFTER]]
    assert received == sorted(received)


async def test_a_hung_broker_is_spooled_around_within_the_handlers_patience(
    settings: Settings, broker_control: list[EmbeddedBroker], tmp_path: Path
) -> None:
    """A broker that stops answering (SIGSTOP: a hung broker, a network partition) is noticed
    only by the wait for its acknowledgement: a batch is spooled after
    EVENTPIPE_INTAKE_SPOOL_AFTER_SECONDS, well before the 5 s the synchronous handler waits."""
    events = range(5)
    with (
        running_intake(settings),
        cvat_vector_logger(settings, tmp_path / "events.db", "SynchronousLogstashHandler") as log,
    ):
        errors = HandlerErrors(log)
        broker_control[0].process.send_signal(signal.SIGSTOP)
        try:
            began = time.monotonic()
            ship(log, events)
            took = time.monotonic() - began
            assert errors.lost == []
            assert spooled_batches() == len(events)
        finally:
            broker_control[0].process.send_signal(signal.SIGCONT)
        await eventually(lambda: spooled_batches() == 0, "the spool to drain", timeout=60)
        # A copy sent twice would be there too by the time the spool is empty.
        records = await topic_records(settings, len(events) + 1, timeout=3)
    # The first batch waits for the broker that long; the next ones queue behind it in the spool
    # at once.
    assert took < settings.intake_spool_after_seconds + 2
    # The first batch, which the broker took late, is not sent again from the spool.
    messages = [decode_rows(record.value or b"") for record in records]
    arrived = sorted(str(event.obj_val) for message in messages for event in message.events)
    assert arrived == [f"e{n}" for n in events]
