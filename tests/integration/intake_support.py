"""Serve the intake for CVAT's server the way ``eventpipe gateway`` does, on a port of its own,
and ship to it with the handler CVAT's server and workers ship with."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from logstash_async.constants import constants
from prometheus_client import REGISTRY

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from ingest_gateway.intake.server import intake_running
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


def intake_accepted() -> float:
    """Events the intake (in this process) answered 200 for, from its counter."""
    return REGISTRY.get_sample_value("eventpipe_intake_events_total", {"outcome": "accepted"}) or 0


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


@contextmanager
def cvat_vector_logger(
    settings: Settings, database_path: Path, handler_class: str = "AsynchronousLogstashHandler"
) -> Iterator[logging.Logger]:
    """The ``vector`` logger of CVAT's settings (``cvat/settings/base.py`` LOGGING), pointing at
    the intake: the server's ``AsynchronousLogstashHandler`` (SQLite queue, resends until 200),
    or, as ``supervisord/worker*.conf`` and ``rqscheduler.conf`` choose it for CVAT's workers
    (``VECTOR_EVENT_HANDLER``), the ``SynchronousLogstashHandler`` (one request per event, no
    queue)."""
    from logstash_async import handler as handlers

    flush_interval = constants.QUEUED_EVENTS_FLUSH_INTERVAL
    constants.QUEUED_EVENTS_FLUSH_INTERVAL = 2.0  # as CVAT's settings set it
    handler = getattr(handlers, handler_class)(
        host="127.0.0.1",
        port=settings.intake_port,
        transport="logstash_async.transport.HttpTransport",
        ssl_enable=False,
        ssl_verify=False,
        version=1,
        message_type="django",
        database_path=str(database_path),
    )
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"vector-{uuid.uuid4().hex}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()
        constants.QUEUED_EVENTS_FLUSH_INTERVAL = flush_interval
