"""``eventpipe gateway``: serve the app with uvicorn, in one or several worker processes."""

from __future__ import annotations

import contextlib
import os

import uvicorn
from starlette.applications import Starlette

from eventpipe import metrics
from eventpipe.logs import logging_config
from eventpipe.settings import Settings
from ingest_gateway.app import create_app
from ingest_gateway.http_protocol import UVICORN_PROTOCOLS
from ingest_gateway.intake_server import intake_running


def app_from_env() -> Starlette:
    """The app factory each uvicorn worker process calls; settings travel in the environment."""
    return create_app(Settings.from_env())


def serve(settings: Settings, workers: int = 1) -> int:
    if workers > 1 and settings.gateway_processes == 1:
        # Each worker enforces its share of the tenant rate limits (ingest_gateway.rate_limit).
        settings = settings.with_overrides(gateway_processes=workers)
    os.environ.update(settings.to_env())
    # Several processes answer on one port, so a scrape of /metrics must see all of them.
    with (
        metrics.shared_by_child_processes() if workers > 1 else contextlib.nullcontext(),
        intake_running(settings, own_process=workers > 1),
    ):
        uvicorn.run(
            "ingest_gateway.server:app_from_env",
            factory=True,
            host=settings.http_host,
            port=settings.http_port,
            workers=workers,
            **UVICORN_PROTOCOLS,
            # uvicorn applies it in every worker process it starts.
            log_config=logging_config(settings),
            log_level=settings.log_level.lower(),
            # One log line per request costs a large share of the throughput; errors are still
            # logged.
            access_log=settings.log_level.upper() == "DEBUG",
        )
    return 0
