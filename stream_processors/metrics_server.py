"""The worker's Prometheus endpoint: ``GET /metrics`` on ``http_host:metrics_port``."""

from __future__ import annotations

import asyncio

from clickhouse_connect.driver.client import Client

from eventpipe import metrics
from eventpipe.settings import Settings
from stream_processors.consumer_lag import watch_consumer_lag


async def serve_metrics(settings: Settings, clickhouse: Client) -> None:
    """A worker service: serve the metrics and keep the consumer lag in them current."""
    server = metrics.serve(settings, "worker")
    if server is None:
        return
    try:
        await watch_consumer_lag(settings)
    finally:
        await asyncio.to_thread(metrics.stop, server)
