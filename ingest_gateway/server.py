"""``eventpipe gateway``: serve the app with uvicorn, in one or several worker processes."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from typing import Final

import uvicorn
from starlette.applications import Starlette

from eventpipe import metrics
from eventpipe.settings import ENV_PREFIX, Settings, SettingsError
from ingest_gateway.app import create_app
from ingest_gateway.http_protocol import uvicorn_options
from ingest_gateway.intake.server import intake_running

# Container objects allocated, net of those freed, between two collections of the youngest
# generation (CPython's default is 700). The requests in flight keep hundreds each alive for a
# while (scopes, coroutines, futures): at 64 connections the default collected once every three
# requests. Garbage in reference cycles waits a little longer to be freed, at most this many
# objects.
YOUNG_GENERATION_THRESHOLD: Final = 10_000


def app_from_env() -> Starlette:
    """The app factory each uvicorn worker process calls; settings travel in the environment."""
    app = create_app(Settings.from_env())
    _settle_heap()
    return app


def _settle_heap() -> None:
    """Keep the cyclic garbage collector off what lives as long as the process.

    Every module is imported and the app built. A full collection looks at every container of the
    oldest generation, and these are tens of thousands (modules, classes, routes, clients): under
    load, full collections (one a second or so, 40-50 ms each) went over them again. Counted with
    ``gc.callbacks`` at 64 connections, the collector took about 14% of a gateway process's CPU;
    with its start-up objects frozen and the youngest generation collected less often, about 1%.
    """
    gc.collect()  # so that no garbage is frozen with them
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


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
