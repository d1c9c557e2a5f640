"""``eventpipe gateway``: serve the app with uvicorn, in one or several worker processes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from eventpipe import metrics
from eventpipe.settings import ENV_PREFIX, Settings, SettingsError
from ingest_gateway.app import create_app
from ingest_gateway.http_protocol import uvicorn_options
from ingest_gateway.intake.server import intake_running


def app_from_env() -> Starlette:
    """The app factory each uvicorn worker process calls; settings travel in the environment."""
    return create_app(Settings.from_env())


def serve(settings: Settings, workers: int = 1) -> int:
    if workers > 1 and settings.gateway_processes == 1:
        # Each worker enforces its share of the tenant rate limits (ingest_gateway.limits).
        settings = settings.with_overrides(gateway_processes=workers)
    check_metrics_port(settings)
    os.environ.update(settings.to_env())
    # Several processes answer on one port: the metrics this process serves must be all of theirs.
    with (
        metrics.shared_by_child_processes() if workers > 1 else contextlib.nullcontext(),
        _metrics_served(settings),
        intake_running(settings, own_process=workers > 1),
    ):
        uvicorn.run(
            "ingest_gateway.server:app_from_env",
            factory=True,
            workers=workers,
            **uvicorn_options(settings, settings.http_host, settings.http_port),
        )
    return 0


def check_metrics_port(settings: Settings) -> None:
    """Metrics are for the operator's Prometheus: never on a port callers or CVAT post to."""
    if settings.metrics_port and settings.metrics_port in (
        settings.http_port,
        settings.intake_port,
    ):
        raise SettingsError(
            f"{ENV_PREFIX}METRICS_PORT={settings.metrics_port} is the API's or the intake's port; "
            "give the metrics a port of their own that callers cannot reach, or 0 for none"
        )


@contextlib.contextmanager
def _metrics_served(settings: Settings) -> Iterator[None]:
    server = metrics.serve(settings, "gateway")
    try:
        yield
    finally:
        metrics.stop(server)
