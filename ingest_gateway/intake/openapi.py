"""``GET /api/schema`` on the intake port: the OpenAPI 3.1 document of the intake for CVAT's server.

Built from the settings the intake runs with (whether it asks for HTTP Basic credentials, its limit
of events per batch) and from the contract of the events it stores
(:class:`eventpipe.contracts.ServerEvent`). Tests check real answers against it
(tests/integration/test_intake_schema.py) and schemathesis fuzzes it (tests/e2e).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

from eventpipe.contracts import ServerEvent
from eventpipe.settings import ENV_PREFIX, Settings
from ingest_gateway.errors import JSON_MEDIA_TYPE
from ingest_gateway.operations import REF, TIMESTAMP_SCHEMA, Error, error_answer, json_content

Count = Annotated[int, msgspec.Meta(ge=0)]


class IntakeAnswer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The 200 answer: events of the batch stored, and events sent to the dead-letter topic."""

    accepted: Count
    dead_lettered: Count


# The renderings CVAT's server sends besides RFC 3339: str(datetime.timestamp()).
_UNIX_SECONDS: Final = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "Unix seconds with a fraction, as CVAT writes it (e.g. '1764745600.123456')",
}
_PAYLOAD: Final = {
    "anyOf": [
        {"type": "string", "description": "JSON text, stored as sent"},
        {"type": "object", "description": "stored as JSON text, as CVAT's server writes it"},
        {"type": "null"},
    ]
}
_DEAD_LETTERED: Final = (
    "An element that is an object but not a valid event (no or an empty scope, a timestamp that "
    "does not parse or lies outside 1900-01-01..2299-12-31, a value of the wrong type) goes to "
    "the dead-letter topic with the reason, and the batch is still answered 200: the sender "
    "counts anything else as undelivered and would send the same bad event again for ever."
)


def _event_schema(components: dict[str, Any]) -> None:
    """ServerEvent as the intake decodes it: laxer than the msgspec schema where CVAT needs it."""
    event = components["ServerEvent"]
    event["description"] = (
        "One event as CVAT renders it. Ids may also be sent as numeric strings; keys the table "
        "does not hold (request_id, remote_addr, ...) are dropped."
    )
    properties = event["properties"]
    properties["scope"] = {"type": "string", "minLength": 1}
    properties["timestamp"] = {"anyOf": [_UNIX_SECONDS, TIMESTAMP_SCHEMA]}
    properties["payload"] = _PAYLOAD


def intake_schema_document(settings: Settings) -> dict[str, Any]:
    """The document of an intake running with ``settings``."""
    _, components = msgspec.json.schema_components(
        [ServerEvent, IntakeAnswer, Error], ref_template=REF
    )
    _event_schema(components)
    limit = settings.intake_max_events_per_batch
    batch = {
        "type": "array",
        "maxItems": limit,
        "items": {
            "anyOf": [
                {"$ref": REF.format(name="ServerEvent")},
                {"type": "object", "description": _DEAD_LETTERED},
            ]
        },
    }
    post = {
        "operationId": "intake_create",
        "summary": "Store a batch of events from CVAT's server (python-logstash-async)",
        "requestBody": {
            "required": True,
            "description": f"A JSON array of event objects. {_DEAD_LETTERED}",
            "content": {JSON_MEDIA_TYPE: {"schema": batch}},
        },
        "responses": {
            "200": {
                "description": "the batch is durable: the broker acknowledged its records, or "
                "the intake's spool holds them on disk until the broker is back. Its records are "
                "its valid events, the dead-letter copy of every invalid one, and the head of "
                "every event too large for a Kafka message (dead-lettered with the reason)",
                **json_content("IntakeAnswer"),
            },
            "400": error_answer(
                400, "the body is not a JSON array of objects (`field` names the element)"
            ),
            "401": {
                **error_answer(
                    401,
                    "credentials are configured and the request's HTTP Basic credentials are "
                    "missing or wrong",
                ),
                "headers": {
                    "WWW-Authenticate": {
                        "description": "the Basic challenge",
                        "schema": {"type": "string"},
                    }
                },
            },
            "408": error_answer(408, "the body did not arrive in time"),
            "413": error_answer(
                413,
                f"the body is over {ENV_PREFIX}INTAKE_MAX_BODY_BYTES, or the batch holds more "
                f"than {ENV_PREFIX}INTAKE_MAX_EVENTS_PER_BATCH events",
            ),
            "503": error_answer(
                503,
                "the broker is away and the intake's spool is full or cannot be written: send the"
                " batch again later",
            ),
        },
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "eventpipe intake for CVAT's server", "version": "1"},
        "paths": {"/": {"post": post}},
        "components": {"schemas": components},
    }
    if settings.intake_username:
        document["components"]["securitySchemes"] = {
            "basicAuth": {"type": "http", "scheme": "basic"}
        }
        document["security"] = [{"basicAuth": []}]
    return document
