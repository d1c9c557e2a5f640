"""``POST /api/events``: authenticate, validate, enrich, produce one Kafka message, answer 201."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, cast

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventpipe.contracts import (
    CLIENT_SCOPES,
    ClientEvents,
    ClientEventsRequest,
    EncodedClientEvents,
    Event,
    IngestMessage,
    tenant_key,
)
from eventpipe.settings import Settings
from eventpipe.table_rows import encode_event, request_rows
from ingest_gateway.errors import JSON_MEDIA_TYPE
from ingest_gateway.events import body as request_body
from ingest_gateway.events.caller_address import joined_header, remote_addr
from ingest_gateway.identity.authentication import authenticate
from ingest_gateway.identity.org_context import event_identity, resolve_org_context
from ingest_gateway.identity.org_selection import ORG_PARAMETERS
from ingest_gateway.identity.permissions import Caller, check_send_events
from ingest_gateway.limits.interface import tenant_limiter_of
from ingest_gateway.operations import (
    TIMESTAMP_SCHEMA,
    Operation,
    documented,
    error_answers,
    json_content,
)
from ingest_gateway.producer import producer_of
from ingest_gateway.request_middleware import count_events, message_id

_response_encoder: Final = msgspec.json.Encoder()


def _refine_event_schemas(components: dict[str, Any]) -> None:
    """Timestamps as the body decoder reads them. The events of a request carry one of CVAT's
    client scopes (others are a 400), unlike ``previous_event`` and the events of an answer,
    which share the Event schema; and their payload is JSON text, stored as CVAT stores it."""
    for name in ("Event", "ClientEvent", "ClientEventsRequest", "ClientEvents"):
        components[name]["properties"]["timestamp"] = TIMESTAMP_SCHEMA
    properties = components["ClientEvent"]["properties"]
    properties["scope"] = {"type": "string", "enum": sorted(CLIENT_SCOPES)}
    properties["payload"] = {
        "type": "string",
        "description": "JSON text; stored as Python's json.dumps(json.loads(payload)) writes it"
        ', as CVAT stores it ("{}" when left out)',
    }
    properties["source"]["description"] = "only 'client' (the default) is accepted"


@documented(
    Operation(
        operation_id="events_create",
        summary="Log client events",
        parameters=ORG_PARAMETERS,
        request_body={"required": True, **json_content("ClientEventsRequest")},
        responses={
            "201": {
                "description": "the enriched events, durably in Kafka",
                **json_content("ClientEvents"),
            },
            **error_answers(400, 401, 403, 404, 408, 413, 415, 429, 502, 503),
        },
        schemas=(ClientEventsRequest, ClientEvents),
        refine=_refine_event_schemas,
    )
)
async def post_events(request: Request) -> Response:
    # The clock-skew correction measures against the moment the request arrived.
    received_at = datetime.now(UTC)
    user = await authenticate(request)
    context = await resolve_org_context(request, user)
    check_send_events(Caller.of(user, context))
    request_body.require_json(request.headers.get("content-type"))
    identity = event_identity(user, context)
    tenant = tenant_key(identity)
    # Before the body is read and decoded: a tenant over its rate is refused at a fifth of the
    # cost of an accepted request.
    limiter = tenant_limiter_of(request)
    if limiter is not None:
        limiter.admit(tenant)
    settings: Settings = request.app.state.settings
    body = await request_body.read_body(
        request, settings.max_body_bytes, settings.body_read_timeout_seconds
    )
    events_request = request_body.decode(body, settings.max_events_per_request)
    count_events(len(events_request.events))
    # An empty request takes nothing: with the shared limiter, that spares a Redis round trip.
    if limiter is not None and events_request.events:
        await limiter.take(tenant, len(events_request.events))
    request_body.enrich(events_request, identity, received_at, request.app.state.payload_limits)

    # Each event is encoded once: the same bytes are the answer's events and the rows message's
    # (with the working-time events appended), which the processor inserts as they are. A request
    # with nothing to store (no events: previous_event alone yields no working time; or only
    # user:activity, which counts for the working time and is echoed as CVAT echoes it, not
    # stored) is answered without a round trip to the broker.
    events_json = b",".join([encode_event(event) for event in events_request.events])
    message = IngestMessage(
        request_id=message_id(),
        received_at=received_at,
        identity=identity,
        # A list of ClientEvents is a list of Events; mypy holds lists invariant.
        events=cast("list[Event]", events_request.events),
        previous_event=events_request.previous_event,
        remote_addr=remote_addr(request, settings.num_proxies),
        user_agent=joined_header(request, "user-agent"),
    )
    rows = request_rows(message, events_json)
    if rows is not None:
        await producer_of(request).produce(tenant, rows.message())
    # CVAT answers what its serializer validated: the caller's address is only on what it stores.
    answer = EncodedClientEvents(
        events=msgspec.Raw(b"[%s]" % events_json), timestamp=events_request.timestamp
    )
    return Response(_response_encoder.encode(answer), 201, media_type=JSON_MEDIA_TYPE)
