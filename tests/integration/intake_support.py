"""Serve the intake for CVAT's server the way ``eventpipe gateway`` does, on a port of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from ingest_gateway.intake_server import intake_running
from tests.server_processes import wait_until

T0 = datetime(2026, 3, 2, 9, 0, 0, 123000, tzinfo=UTC)


def server_event(**fields: object) -> dict[str, object]:
    """A server event as CVAT renders it: Unix-seconds timestamp, payload string, extra keys."""
    return {
        "scope": "create:task",
        "timestamp": str(T0.timestamp()),
        "source": "server",
        "payload": '{"request":{"id":"7c1f"}}',
        "obj_name": "task",
        "obj_id": 11,
        "task_id": 11,
        "project_id": 3,
        "user_id": 5,
        "user_name": "bob",
        "user_email": "bob@example.com",
        "org_id": 2,
        "org_slug": "acme",
        "access_token_id": 9,
        "request_id": "7c1f",
        "remote_addr": "10.0.0.8",
        **fields,
    }


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
                "the intake is ready",
                20.0,
            )
        yield url
