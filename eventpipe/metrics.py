"""Prometheus metrics: what the gateway's ``GET /metrics`` and a worker's metrics server answer.

Each module defines its own metrics in prometheus_client's default registry. A worker is one
process and serves that registry. The gateway may run as several uvicorn processes behind one
port, where a scrape reaches one of them at random; there the metrics live in files that every
process writes and any process reads (prometheus_client's multiprocess mode), so each scrape
answers the sum over all of them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# prometheus_client reads it when it is imported: child processes must inherit it.
MULTIPROCESS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def exposition() -> bytes:
    """This process's metrics in the text format, or those of every process sharing them."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


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


def serve(host: str, port: int) -> WSGIServer:
    """Answer ``GET /metrics`` on ``host:port`` from a daemon thread until ``shutdown()``."""
    server, _thread = start_http_server(port, addr=host)
    return server
