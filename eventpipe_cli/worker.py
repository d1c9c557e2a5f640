"""``eventpipe worker``: one process, one Faust app, the consumers of the roles it was asked for.

Start-up order: lower the process's CPU priority (``settings.worker_nice``), open the ClickHouse
client (once per process: an embedded chDB data path admits a single client), apply pending
migrations, create missing topics, then run the Faust worker in the foreground until SIGTERM or
SIGINT. Stopping cancels a batch in progress without acking it, so its messages are consumed
again by the next worker.

Every role's consumer shares the app's event loop and :class:`Worker`'s ClickHouse client.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import faust
from clickhouse_connect.driver.client import Client

from eventpipe.clickhouse import clickhouse_client
from eventpipe.errors import CommandError
from eventpipe.settings import ENV_PREFIX, Settings
from eventpipe.topics import ensure_topics
from exporter.service import run_exporter
from stream_processors.clickhouse_sink import ClickHouseSink
from stream_processors.faust_app import build_app
from stream_processors.ingest_agent import add_ingest_agent
from stream_processors.metrics_server import serve_metrics
from stream_processors.migrations import apply_migrations

log = logging.getLogger(__name__)

# The largest niceness Linux gives a process; a lower one than the parent's needs privileges.
MAX_NICE = 19

# A consumer that is not a Faust agent: a coroutine that runs until the worker stops (and is
# cancelled then), given the process's settings and its one ClickHouse client.
Service = Callable[[Settings, Client], Awaitable[None]]


@dataclass
class Worker:
    """What a worker process holds: its settings, its ClickHouse client and its Faust app."""

    settings: Settings
    clickhouse: Client
    app: faust.App

    def add_service(self, service: Service) -> None:
        """Run ``service`` in this worker, from start until stop, on the app's event loop."""

        async def run() -> None:
            await service(self.settings, self.clickhouse)

        self.app.task(run)


def add_processor(worker: Worker) -> None:
    add_ingest_agent(worker.app, worker.settings, ClickHouseSink(worker.clickhouse))


def add_exporter(worker: Worker) -> None:
    """The exporter consumes ``settings.exports_topic`` in its own group
    (``settings.exporter_group_id``) and sweeps expired exports until the worker stops."""
    worker.add_service(run_exporter)


def build_worker(settings: Settings, role: str) -> Worker:
    clickhouse = clickhouse_client(settings)
    applied = apply_migrations(clickhouse)
    log.info("migrations applied: %s", ", ".join(applied) or "none pending")
    worker = Worker(settings, clickhouse, build_app(settings))
    if role in ("processor", "all"):
        add_processor(worker)
    if role in ("exporter", "all"):
        add_exporter(worker)
    worker.add_service(serve_metrics)
    return worker


def lower_cpu_priority(increment: int) -> int:
    """Add ``increment`` to this process's niceness; return the niceness it then has."""
    if not 0 <= increment <= MAX_NICE:
        raise CommandError(
            f"{ENV_PREFIX}WORKER_NICE={increment} is outside 0..{MAX_NICE}: a worker can only "
            "lower its CPU priority; set 0 to keep it"
        )
    return os.nice(increment)


def run_worker(settings: Settings, role: str) -> int:
    """Run a worker with ``role`` ("processor", "exporter" or "all") until it is told to stop."""
    if role not in ("processor", "exporter", "all"):
        raise CommandError(f"unknown worker role {role!r}")
    niceness = lower_cpu_priority(settings.worker_nice)
    worker = build_worker(settings, role)
    # Faust runs on the thread's event loop; create it here so topic creation can use it too.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(ensure_topics(settings))
        log.info(
            "worker %s consuming %s at niceness %d",
            role,
            settings.kafka_bootstrap_servers,
            niceness,
        )
        faust.Worker(
            worker.app, loop=loop, loglevel=settings.log_level, quiet=True
        ).execute_from_commandline()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    finally:
        worker.clickhouse.close()
        # Closing twice is harmless: the worker may have closed it on its way out.
        loop.close()
    return 0
