"""The exporter's entry point for the worker process: consume requests and sweep, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from eventpipe.settings import Settings
from eventpipe.stores import ObjectStore, open_store
from eventpipe.topics import ensure_topics
from exporter.consumer import ExportConsumer
from exporter.export_job import JobOptions
from exporter.sweeper import SweepPolicy, sweep

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 60.0
STALE_RUNNING_AFTER = timedelta(minutes=5)


def connection_factory(settings: Settings, clickhouse: Client) -> Callable[[], Client]:
    """Open a new ClickHouse connection per export, to the engine ``clickhouse`` talks to.

    An export's open stream holds its connection for the whole export, so exports never use the
    worker's shared client, which the processor needs meanwhile. On the embedded engine the new
    connection opens the path this process already hosts (chDB admits many connections to its one
    path per process, and no other path).
    """
    # A server client's uri lacks the credentials; the embedded one's is the whole DSN.
    dsn = (
        clickhouse.uri if clickhouse.uri.startswith("chdb://") else settings.resolved_clickhouse_dsn
    )

    def connect() -> Client:
        return clickhouse_connect.get_client(dsn=dsn, database=settings.clickhouse_database)

    return connect


def job_options(settings: Settings) -> JobOptions:
    return JobOptions(
        ttl=timedelta(seconds=settings.export_ttl_seconds),
        neutralize_formulas=settings.csv_neutralize_formulas,
        # The embedded engine shares the worker's cores and memory with the processor; one
        # thread reads the table in key order with about a third of the memory (see benchmark).
        max_threads=1 if settings.embedded_clickhouse else 0,
    )


def sweep_policy(settings: Settings) -> SweepPolicy:
    ttl = timedelta(seconds=settings.export_ttl_seconds)
    return SweepPolicy(ttl=ttl, stale_running_after=STALE_RUNNING_AFTER, stale_queued_after=ttl)


async def run_exporter(
    settings: Settings,
    clickhouse: Client,
    stop_event: asyncio.Event | None = None,
    *,
    store: ObjectStore | None = None,
    max_concurrent: int = 2,
    sweep_interval: float = SWEEP_INTERVAL_SECONDS,
) -> None:
    """Run exports from the exports topic and sweep expired ones until ``stop_event`` is set or
    the task is cancelled (the worker's service contract).

    Exports still running at stop go back to the queue for the next exporter.
    """
    await ensure_topics(settings)
    if store is None:
        store = await asyncio.to_thread(open_store, settings)
    consumer = ExportConsumer(
        settings,
        store,
        connection_factory(settings, clickhouse),
        job_options(settings),
        max_concurrent=max_concurrent,
    )
    sweeper = asyncio.create_task(_sweep_forever(store, sweep_policy(settings), sweep_interval))
    try:
        await consumer.run(stop_event or asyncio.Event())
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


async def _sweep_forever(store: ObjectStore, policy: SweepPolicy, interval: float) -> None:
    while True:
        try:
            await asyncio.to_thread(sweep, store, policy, datetime.now(UTC))
        except Exception:
            # The store may be down for a moment; the next pass retries everything.
            log.exception("export sweep failed")
        await asyncio.sleep(interval)
