"""Prometheus metrics: the ``GET /metrics`` listener every process serves on ``metrics_port``.

Each module defines its own metrics in prometheus_client's default registry. A worker is one
process and serves that registry. The gateway may run as several uvicorn processes; there the
metrics live in files that every process writes (prometheus_client's multiprocess mode) and the
process that started them serves the sum over all of them.

The listener is never the API's port: metrics are for the operator's Prometheus, not for callers.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    multiprocess,
    start_http_server,
)

from eventpipe.settings import Settings

log = logging.getLogger(__name__)

# prometheus_client reads it when it is imported: child processes must inherit it.
MULTIPROCESS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def _registry() -> CollectorRegistry:
    """This process's metrics, or those of every process sharing them."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


@contextmanager
def shared_by_child_processes() -> Iterator[None]:
    """Make processes started in the body keep their metrics in one fresh directory.

    The directory starts empty (files of an earlier run would be counted again) and is removed
    afterwards.
    """
    directory = tempfile.mkdtemp(prefix="eventpipe-metrics-")
    os.environ[MULTIPROCESS_DIR_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR_ENV]
        shutil.rmtree(directory, ignore_errors=True)


def process_exiting() -> None:
    """Drop this process's gauges from the shared ones (its counters keep counting)."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def serve(settings: Settings, process: str) -> WSGIServer | None:
    """Answer ``GET /metrics`` on ``http_host:metrics_port`` from a daemon thread until
    ``shutdown()``; None when ``metrics_port`` is 0 or cannot be bound.

    A port that cannot be bound is logged and the ``process`` (``gateway``, ``worker``) goes on
    without metrics: losing them is no reason to stop taking or storing events.
    """
    if not settings.metrics_port:
        return None
    try:
        server, _thread = start_http_server(
            settings.metrics_port, addr=settings.http_host, registry=_registry()
        )
    except OSError as exc:
        log.error(
            "cannot serve metrics on %s:%d (%s); this %s runs without them",
            settings.http_host,
            settings.metrics_port,
            exc.strerror,
            process,
        )
        return None
    log.info("metrics at http://%s:%d/metrics", settings.http_host, settings.metrics_port)
    return server


def stop(server: WSGIServer | None) -> None:
    if server is not None:
        # shutdown() waits for the server thread's next poll (up to half a second).
        server.shutdown()
        server.server_close()
