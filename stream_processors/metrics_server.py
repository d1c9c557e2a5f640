"""The worker's Prometheus endpoint: ``GET /metrics`` on ``http_host:metrics_port``."""

from __future__ import annotations

import asyncio
import logging

from clickhouse_connect.driver.client import Client

from eventpipe import metrics
from eventpipe.settings import Settings
from stream_processors.consumer_lag import watch_consumer_lag

log = logging.getLogger(__name__)


async def serve_metrics(settings: Settings, clickhouse: Client) -> None:
    """A worker service: serve the metrics and keep the consumer lag in them current.

    A port that cannot be bound is logged and the worker goes on without metrics: losing them
    is no reason to stop storing events.
    """
    if not settings.metrics_port:
        return
    try:
        server = metrics.serve(settings.http_host, settings.metrics_port)
    except OSError as exc:
        log.error(
            "cannot serve metrics on %s:%d (%s); this worker runs without them",
            settings.http_host,
            settings.metrics_port,
            exc.strerror,
        )
        return
    log.info("metrics at http://%s:%d/metrics", settings.http_host, settings.metrics_port)
    try:
        await watch_consumer_lag(settings)
    finally:
        # shutdown() waits for the server thread's next poll (up to half a second).
        await asyncio.to_thread(server.shutdown)
        server.server_close()
