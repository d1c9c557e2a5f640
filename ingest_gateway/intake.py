"""The intake for CVAT's server: what Vector's ``http_server`` source was in a CVAT deployment.

CVAT's server ships every event through python-logstash-async's ``HttpTransport``: ``POST /``
with a JSON array of event objects, optionally with HTTP Basic credentials. The handler counts
only 200 as delivered and otherwise keeps the batch in its local queue and sends it again, so:

- 200 only once the broker acknowledged the batch's valid events and the dead-letter copy of each
  invalid one (a partly invalid batch is answered 200: else one bad event would come back for
  ever and hold up everything queued behind it);
- 503 with Retry-After while the broker is away or the unacknowledged bytes reach their bound;
- 400 for a body that is not a JSON array of objects, 413 over the size limits, 401 without the
  configured credentials.

``GET /api/schema`` serves the OpenAPI document of these answers (:mod:`intake_openapi`).

It is a Starlette app of its own, served on ``Settings.intake_port``, never on the public port.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import uuid
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

from eventpipe.contracts import (
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_MAX_DETAIL_BYTES,
    DEAD_LETTER_REASON_HEADER,
    IntakeMessage,
    intake_message_encoder,
)
from eventpipe.settings import ENV_PREFIX, Settings, SettingsError
from ingest_gateway import health, request_body
from ingest_gateway.errors import EXCEPTION_HANDLERS, JSON_MEDIA_TYPE, ApiError, struct_response
from ingest_gateway.http_protocol import HEAD_TIMEOUT_STATE_KEY
from ingest_gateway.intake_batch import IntakeBatch, InvalidEvent, decode_batch
from ingest_gateway.intake_openapi import IntakeAnswer, intake_schema_document
from ingest_gateway.metrics import intake_events
from ingest_gateway.producer import EventProducer, producer_of
from ingest_gateway.request_context import RequestContext

INVALID_EVENT_REASON: Final = "invalid-intake-event"
_CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="eventpipe intake"'}


def check_intake_settings(settings: Settings) -> None:
    """Refuse settings that would expose the intake or half-configure its credentials."""
    if bool(settings.intake_username) != bool(settings.intake_password):
        raise SettingsError(
            f"set both {ENV_PREFIX}INTAKE_USERNAME and {ENV_PREFIX}INTAKE_PASSWORD, or neither"
        )
    if settings.intake_max_body_bytes > settings.max_body_bytes:
        # The events topic takes messages sized for max_body_bytes (Settings.max_message_bytes).
        raise SettingsError(
            f"{ENV_PREFIX}INTAKE_MAX_BODY_BYTES={settings.intake_max_body_bytes} is above "
            f"{ENV_PREFIX}MAX_BODY_BYTES={settings.max_body_bytes}, which sizes the Kafka messages "
            "the events topic takes: raise both"
        )
    if settings.intake_port == settings.http_port:
        raise SettingsError(
            f"{ENV_PREFIX}INTAKE_PORT={settings.intake_port} is the public API port; the intake "
            "takes events without a user's identity and needs a port of its own"
        )


async def post_batch(request: Request) -> Response:
    received_at = datetime.now(UTC)
    settings: Settings = request.app.state.settings
    _authenticate(request, settings)
    body = await request_body.read_body(
        request, settings.intake_max_body_bytes, settings.body_read_timeout_seconds
    )
    batch = decode_batch(body, settings.intake_max_events_per_batch)
    await _store(producer_of(request), settings, batch, received_at)
    intake_events("accepted", len(batch.valid))
    intake_events("dead_lettered", len(batch.invalid))
    answer = IntakeAnswer(accepted=len(batch.valid), dead_lettered=len(batch.invalid))
    return struct_response(200, answer)


async def get_schema(request: Request) -> Response:
    schema: bytes = request.app.state.schema
    return Response(schema, media_type=JSON_MEDIA_TYPE)


async def _store(
    producer: EventProducer, settings: Settings, batch: IntakeBatch, received_at: datetime
) -> None:
    """Produce the valid events as one message and each invalid one to the dead-letter topic;
    return once the broker acknowledged all of them (else the ApiError of the first failure)."""
    sends = [
        producer.send_and_wait(settings.dead_letter_topic, bad.raw, key=_key(), headers=_why(bad))
        for bad in batch.invalid
    ]
    if batch.valid:
        message = IntakeMessage(received_at=received_at, events=batch.valid)
        # A random key spreads batches over the partitions: the table orders events by time.
        sends.append(producer.produce(_key(), intake_message_encoder.encode(message)))
    await asyncio.gather(*sends)


def _key() -> bytes:
    return uuid.uuid4().bytes


def _why(invalid: InvalidEvent) -> list[tuple[str, bytes]]:
    detail = f"event {invalid.index} of an intake batch: {invalid.reason}"
    return [
        (DEAD_LETTER_REASON_HEADER, INVALID_EVENT_REASON.encode()),
        (DEAD_LETTER_DETAIL_HEADER, detail.encode()[:DEAD_LETTER_MAX_DETAIL_BYTES]),
    ]


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
        producer = EventProducer(settings)
        app.state.producer = producer
        await producer.start()
        try:
            # As on the API port: uvicorn's protocol instances read the head deadline from here.
            yield {HEAD_TIMEOUT_STATE_KEY: settings.header_read_timeout_seconds}
        finally:
            await producer.stop()

    routes = [
        Route("/", post_batch, methods=["POST"]),
        Route("/api/schema", get_schema, methods=["GET"]),
        Route("/health/live", health.live, methods=["GET"]),
        Route("/health/ready", health.ready, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestContext, routes=frozenset(route.path for route in routes))],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.schema = msgspec.json.encode(intake_schema_document(settings))
    return app
