"""The intake for CVAT's server: what Vector's ``http_server`` source was in a CVAT deployment.

CVAT's server ships every event through python-logstash-async's ``HttpTransport``: ``POST /``
with a JSON array of event objects (up to 100 MB), optionally with HTTP Basic credentials. Its
server process counts only 200 as delivered and otherwise sends the batch again for ever; its
workers' synchronous handler drops a batch that is not answered 200. So:

- 200 once the batch's records are in Kafka or in the intake's spool on disk
  (:mod:`ingest_gateway.intake.delivery`): valid events, a dead-letter copy of each invalid one
  and the head of each event too large for a Kafka message (else one bad event would come back
  for ever and hold up everything queued behind it);
- 503 with Retry-After only while the broker is away and the spool is full or cannot be written;
- 400 for a body that is not a JSON array of objects, 413 over the size limits, 401 without the
  configured credentials.

``GET /api/schema`` serves the OpenAPI document of these answers
(:mod:`ingest_gateway.intake.openapi`).

It is a Starlette app of its own, served on ``Settings.intake_port``, never on the public port.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Final

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventpipe.settings import ENV_PREFIX, Settings, SettingsError
from ingest_gateway import health
from ingest_gateway.errors import (
    EXCEPTION_HANDLERS,
    ApiError,
    json_response,
    struct_response,
)
from ingest_gateway.events import body as request_body
from ingest_gateway.http_protocol import HEAD_TIMEOUT_STATE_KEY
from ingest_gateway.intake.batch import IntakeBatch, decode_batch
from ingest_gateway.intake.delivery import IntakeDelivery
from ingest_gateway.intake.openapi import IntakeAnswer, intake_schema_document
from ingest_gateway.intake.records import batch_entry
from ingest_gateway.intake.spool import IntakeSpool, SpoolEntry
from ingest_gateway.metrics import intake_events
from ingest_gateway.operations import serve_document
from ingest_gateway.producer import RETRY_AFTER_SECONDS, EventProducer, producer_of
from ingest_gateway.request_middleware import RequestMiddleware

_CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="eventpipe intake"'}

# A batch larger than this is decoded and rendered in a thread (CVAT's handler sends up to 100 MB).
INLINE_BATCH_BYTES: Final = 1024 * 1024


def check_intake_settings(settings: Settings) -> None:
    """Refuse settings that would expose the intake or half-configure its credentials."""
    if bool(settings.intake_username) != bool(settings.intake_password):
        raise SettingsError(
            f"set both {ENV_PREFIX}INTAKE_USERNAME and {ENV_PREFIX}INTAKE_PASSWORD, or neither"
        )
    if settings.intake_spool_max_bytes < settings.intake_max_body_bytes:
        # A batch the spool cannot hold would be refused for as long as the broker is away.
        raise SettingsError(
            f"{ENV_PREFIX}INTAKE_SPOOL_MAX_BYTES={settings.intake_spool_max_bytes} is below "
            f"{ENV_PREFIX}INTAKE_MAX_BODY_BYTES={settings.intake_max_body_bytes}: the spool must "
            "hold at least the largest batch"
        )
    if settings.intake_spool_after_seconds <= 0:
        raise SettingsError(
            f"{ENV_PREFIX}INTAKE_SPOOL_AFTER_SECONDS={settings.intake_spool_after_seconds} must "
            "be above 0"
        )
    if settings.intake_port == settings.http_port:
        raise SettingsError(
            f"{ENV_PREFIX}INTAKE_PORT={settings.intake_port} is the public API port; the intake "
            "takes events without a user's identity and needs a port of its own"
        )


def _records(
    body: bytes, received_at: datetime, settings: Settings
) -> tuple[IntakeBatch, SpoolEntry]:
    batch = decode_batch(body, settings.intake_max_events_per_batch)
    return batch, batch_entry(batch, received_at, settings)


async def post_batch(request: Request) -> Response:
    received_at = datetime.now(UTC)
    settings: Settings = request.app.state.settings
    _authenticate(request, settings)
    body = await request_body.read_body(
        request, settings.intake_max_body_bytes, settings.body_read_timeout_seconds
    )
    if len(body) > INLINE_BATCH_BYTES:
        # Decoding and rendering take a few µs an event: a batch of megabytes would hold the
        # event loop, the spool's drain and the readiness probe with it, for that long.
        batch, entry = await asyncio.to_thread(_records, body, received_at, settings)
    else:
        batch, entry = _records(body, received_at, settings)
    dead_lettered = sum(record.topic == settings.dead_letter_topic for record in entry.records)
    accepted = len(batch.valid) + len(batch.invalid) - dead_lettered
    delivery: IntakeDelivery = request.app.state.delivery
    try:
        await delivery.deliver(entry)
    except ApiError:
        intake_events("refused", accepted + dead_lettered)
        raise
    intake_events("accepted", accepted)
    intake_events("dead_lettered", dead_lettered)
    return struct_response(200, IntakeAnswer(accepted=accepted, dead_lettered=dead_lettered))


async def ready(request: Request) -> Response:
    """Ready while batches can be taken: the broker is reachable or the spool has room. An
    intake taken out of its Service while the broker is away would lose the events of CVAT's
    workers, which the spool is there to keep."""
    spool: IntakeSpool = request.app.state.spool
    if producer_of(request).ready:
        return json_response(200, {"status": "ready"})
    if not spool.full:
        return json_response(200, {"status": "spooling"})
    return json_response(
        503,
        {"status": "unavailable", "error": "the event broker is away and the spool is full"},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _authenticate(request: Request, settings: Settings) -> None:
    if not settings.intake_username:
        return
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
    except (binascii.Error, ValueError):
        user = password = b""
    # Both compared every time, in constant time: the answer's timing tells nothing about either.
    user_ok = hmac.compare_digest(user, settings.intake_username.encode())
    password_ok = hmac.compare_digest(password, settings.intake_password.encode())
    if not (scheme.lower() == "basic" and user_ok and password_ok):
        raise ApiError(401, "the intake needs its HTTP Basic credentials", headers=_CHALLENGE)


def create_intake_app(settings: Settings) -> Starlette:

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, float]]:
        spool = IntakeSpool(settings.resolved_intake_spool_dir, settings.intake_spool_max_bytes)
        spool.open()
        producer = EventProducer(settings)
        delivery = IntakeDelivery(producer, spool, settings)
        app.state.producer, app.state.spool, app.state.delivery = producer, spool, delivery
        await producer.start()
        drain = asyncio.create_task(delivery.drain(), name="intake-spool-drain")
        try:
            # As on the API port: uvicorn's protocol instances read the head deadline from here.
            yield {HEAD_TIMEOUT_STATE_KEY: settings.header_read_timeout_seconds}
        finally:
            # What the drain has not released stays in the spool for the next start.
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            await producer.stop()
            spool.close()

    routes = [
        Route("/", post_batch, methods=["POST"]),
        Route("/api/schema", serve_document, methods=["GET"]),
        Route("/health/live", health.live, methods=["GET"]),
        Route("/health/ready", ready, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestMiddleware, routes=frozenset(route.path for route in routes))
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.schema = msgspec.json.encode(intake_schema_document(settings))
    return app
