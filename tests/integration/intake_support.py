"""Serve the intake for CVAT's server the way ``eventpipe gateway`` does, on a port of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from ingest_gateway.intake_server import intake_running
from tests.integration.gateway_support import wait_until


def with_intake_port(settings: Settings) -> Settings:
    return settings.with_overrides(intake_port=free_port())


def intake_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.intake_port}/"


@contextmanager
def running_intake(settings: Settings, *, wait_ready: bool = True) -> Iterator[str]:
    """The intake's URL while it serves; ready (the broker reachable) unless told not to wait."""
    with intake_running(settings):
        url = intake_url(settings)
        if wait_ready:
            wait_until(
                lambda: httpx.get(f"{url}health/ready").status_code == 200,
                "the intake did not become ready",
            )
        yield url
