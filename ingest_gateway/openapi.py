"""``GET /api/schema``: the OpenAPI 3.1 document of the events API.

Request and response bodies come from the msgspec contracts (:mod:`eventpipe.contracts`) and the
answer shapes declared here, so the schema is generated, not written by hand; tests check real
responses against it (tests/integration/test_openapi_schema.py).
"""

from __future__ import annotations

import functools
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventpipe.contracts import CLIENT_SCOPES, ClientEvents, ClientEventsRequest
from ingest_gateway.errors import JSON_MEDIA_TYPE
from ingest_gateway.exports.deprecated_answers import ExportFailed, ExportProgress, ExportStarted
from ingest_gateway.exports.request_answer import STATES, PaginatedRequestList, RequestAnswer, RqId
from ingest_gateway.identity.csrf import CSRF_COOKIE
from ingest_gateway.identity.cvat_credentials import SESSION_COOKIE
from ingest_gateway.params import (
    DATE_SCHEMA,
    ID_SCHEMA,
    SLUG_SCHEMA,
    UUID_SCHEMA,
    choice_schema,
    int_schema,
)

_REF: Final = "#/components/schemas/{name}"


class Error(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every error answer: what went wrong, the parameter or field at fault, the event's index."""

    error: str
    field: str | None
    index: int | None = None


_ERRORS: Final = {
    400: "the body, a field or a parameter is malformed or out of range, or org_id is sent"
    " beside org / X-Organization, or org disagrees with X-Organization (`field` names it)",
    401: "no credentials, or credentials that prove nobody",
    403: "not a member of the organization named, a filter or an export the caller may not use,"
    " another user's request, a CVAT access token on anything but an export, or (CVAT's session)"
    " a POST without the X-CSRFToken of its csrftoken cookie",
    404: "the organization named does not exist, or no request with this id",
    408: "the body did not arrive in time",
    413: "the body or the number of events is over its limit",
    415: "the body is not JSON",
    429: "too many failed logins, or the tenant's event rate is exhausted (see Retry-After)",
    # With EVENTPIPE_CVAT_URL: CVAT checks the caller, and its answers must have CVAT's shapes.
    502: "CVAT, the identity provider, answered in a shape it never has",
    503: "something the answer depends on cannot be reached now (the broker, the export storage,"
    " the identity store or CVAT, or Redis with EVENTPIPE_RATE_LIMIT_REDIS_FAILURE=closed);"
    " retry after Retry-After",
}


def _json(ref: str) -> dict[str, Any]:
    return {"content": {JSON_MEDIA_TYPE: {"schema": {"$ref": _REF.format(name=ref)}}}}


def _error(status: int, description: str | None = None) -> dict[str, Any]:
    answer = {"description": description or _ERRORS[status], **_json("Error")}
    if status in (429, 503):
        answer["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return answer


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


# CVAT's rules for naming the organization, which a schema's parameters cannot express alone:
# org_id beside org or X-Organization is a 400 (even when one is empty), so is an org that
# disagrees with X-Organization; an empty or absent selector means the personal sandbox.
_ORG_RULES: Final = (
    "Not together with org_id (400); an empty value or none means the personal sandbox."
)
_ORG_PARAMETERS: Final = [
    {
        "name": "X-Organization",
        "in": "header",
        "required": False,
        "schema": SLUG_SCHEMA,
        "description": f"the organization slug to act in. {_ORG_RULES}",
    },
    _query(
        "org",
        SLUG_SCHEMA,
        "the organization slug (instead of X-Organization; if both are sent they must be "
        f"equal, else 400). {_ORG_RULES}",
    ),
    _query(
        "org_id",
        ID_SCHEMA,
        "the organization id; not together with org or X-Organization, even an empty one (400)",
    ),
]


def _export_parameters(without_from: str) -> list[dict[str, Any]]:
    """The filters of an export; ``without_from`` says where it starts without ``from``."""
    return [
        *(
            _query(name, ID_SCHEMA, f"only events with this {name}")
            for name in ("project_id", "task_id", "job_id", "user_id")
        ),
        _query("from", DATE_SCHEMA, f"events at or after (ISO-8601); {without_from}"),
        _query(
            "to", DATE_SCHEMA, "events at or before (ISO-8601; default now); not before from (400)"
        ),
        _query("filename", {"type": "string"}, "the downloaded file's name"),
    ]


# Each flow's default start, as its own documentation gives it.
_DEPRECATED_EXPORT_PARAMETERS: Final = _export_parameters(
    "without from and to, the last 30 days; with only to, everything before it"
)
_CURRENT_EXPORT_PARAMETERS: Final = _export_parameters("default is the minimal time")
_QUERY_ID_PARAMETERS: Final = [
    _query("action", {"type": "string", "enum": ["download"]}, "serve the finished CSV"),
    _query(
        "query_id",
        UUID_SCHEMA,
        "the export to poll or download; empty starts one, and so does one naming none of the"
        " caller's exports (under that id when it is free, else under a new one)",
    ),
]
_LOCATION_PARAMETERS: Final = [
    _query(
        "location",
        choice_schema("local", "cloud_storage"),
        "only 'local': exports are kept in this service's own store (cloud_storage: 400)",
    ),
    _query("cloud_storage_id", ID_SCHEMA, "not supported (400)"),
]
# CVAT's deprecated flow never exported to a cloud storage, and says so.
_DEPRECATED_LOCATION_PARAMETERS: Final = [
    _query("location", {"type": "string"}, "cloud_storage is refused (400); others are ignored"),
    _query("cloud_storage_id", ID_SCHEMA, "refused (400)"),
]
_DEPRECATION_HEADER: Final = {
    "Deprecation": {
        "description": "RFC 9745: the date CVAT deprecated this flow, as '@' and Unix time",
        "schema": {"type": "string"},
    }
}
_NO_REQUEST: Final = "no request with this id (or it expired or was cancelled)"


# The export a 202 names is the one to poll: lets a client (or a stateful fuzzer) follow it.
_POLL_EXPORT: Final = {
    "PollExport": {
        "operationId": "events_list",
        "parameters": {"query_id": "$response.body#/query_id"},
        "description": "poll the export, or download it with action=download once it is ready",
    }
}
_FOLLOW_REQUEST: Final = {
    "RetrieveRequest": {
        "operationId": "requests_retrieve",
        "parameters": {"id": "$response.body#/rq_id"},
        "description": "the export's progress, as CVAT's Request",
    },
    "CancelRequest": {
        "operationId": "requests_create_cancel",
        "parameters": {"id": "$response.body#/rq_id"},
        "description": "cancel the export",
    },
}

# What the body decoder (msgspec) reads as a timestamp: RFC 3339, with T, t or a space, and
# without an offset for UTC. Leap seconds and days a month lacks match but are refused (400).
TIMESTAMP_SCHEMA: Final = {
    "type": "string",
    "pattern": (
        r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]"
        r":[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?$"
    ),
    "description": "RFC 3339 date and time; without an offset, UTC",
}


def _timestamps(components: dict[str, Any]) -> None:
    for name in ("Event", "ClientEvent", "ClientEventsRequest", "ClientEvents"):
        components[name]["properties"]["timestamp"] = TIMESTAMP_SCHEMA


def _client_events(components: dict[str, Any]) -> None:
    """The events of a request carry one of CVAT's client scopes (others are a 400), unlike
    ``previous_event`` and the events of an answer, which share the Event schema; and their
    payload is JSON text, stored as CVAT stores it."""
    properties = components["ClientEvent"]["properties"]
    properties["scope"] = {"type": "string", "enum": sorted(CLIENT_SCOPES)}
    properties["payload"] = {
        "type": "string",
        "description": "JSON text; stored as Python's json.dumps(json.loads(payload)) writes it"
        ', as CVAT stores it ("{}" when left out)',
    }
    properties["source"]["description"] = "only 'client' (the default) is accepted"


def _id_path(description: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


def _requests_paths() -> dict[str, Any]:
    """CVAT's current export flow (:mod:`ingest_gateway.exports.requests_api`)."""
    export = {
        "operationId": "events_create_export",
        "summary": "Start an export of the event log as CSV (CVAT's requests flow)",
        "parameters": [*_ORG_PARAMETERS, *_CURRENT_EXPORT_PARAMETERS, *_LOCATION_PARAMETERS],
        "responses": {
            "202": {
                "description": "the export is queued: follow rq_id",
                "links": _FOLLOW_REQUEST,
                **_json("RqId"),
            },
            **{str(s): _error(s) for s in (400, 401, 403, 404, 429, 502, 503)},
        },
    }
    download = {
        "operationId": "events_download_file",
        "summary": "Download a finished export (a request's result_url)",
        "parameters": [
            {
                **_query("rq_id", {"type": "string", "minLength": 1}, "the request's id"),
                "required": True,
            }
        ],
        "responses": {
            "200": {
                "description": "the CSV file, as an attachment",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            "400": _error(400, "no rq_id, an unknown one, or the request has not finished"),
            **{str(s): _error(s) for s in (401, 403, 429, 502, 503)},
        },
    }
    listing = {
        "operationId": "requests_list",
        "summary": "The caller's export requests, newest first",
        "parameters": [
            _query("page", int_schema(1), "the page, from 1"),
            _query("page_size", int_schema(1), "requests per page"),
            _query("status", choice_schema(*STATES.values()), "only these"),
            _query("target", {"type": "string"}, "only this target (every request: 'events')"),
            _query("action", {"type": "string"}, "only this action (every request: 'export')"),
            *(
                _query(name, {"type": "string"}, "none of an events export's (any value: none)")
                for name in ("subresource", "format", "org")
            ),
            *(
                _query(name, ID_SCHEMA, "none of an events export's (any value: none)")
                for name in ("project_id", "task_id", "job_id", "org_id")
            ),
            _query("filter", {"type": "string"}, "CVAT's JSON Logic over the fields above"),
            _query(
                "sort",
                {"type": "string"},
                "created_date, status or action, '-' first for descending (-created_date)",
            ),
        ],
        "responses": {
            "200": {"description": "one page of requests", **_json("PaginatedRequestList")},
            "400": _error(400),
            "404": _error(404, "the page is past the last one"),
            **{str(s): _error(s) for s in (401, 429, 502, 503)},
        },
    }
    retrieve = {
        "operationId": "requests_retrieve",
        "summary": "One export request, as CVAT's Request",
        "parameters": [_id_path("the request's rq_id")],
        "responses": {
            "200": {"description": "the request", **_json("RequestAnswer")},
            "404": _error(404, _NO_REQUEST),
            **{str(s): _error(s) for s in (401, 403, 429, 502, 503)},
        },
    }
    cancel = {
        "operationId": "requests_create_cancel",
        "summary": "Cancel a queued or started export; the request is deleted",
        "parameters": [_id_path("the request's rq_id")],
        "responses": {
            "200": {"description": "cancelled: the request is gone"},
            "400": _error(400, "the request has already ended"),
            "404": _error(404, _NO_REQUEST),
            **{str(s): _error(s) for s in (401, 403, 429, 502, 503)},
        },
    }
    return {
        "/api/events/export": {"post": export},
        "/api/events/download": {"get": download},
        "/api/requests": {"get": listing},
        "/api/requests/{id}": {"get": retrieve},
        "/api/requests/{id}/cancel": {"post": cancel},
    }


@functools.cache
def schema_document(cvat: bool = False) -> dict[str, Any]:
    """The OpenAPI document (built once); ``cvat``: of a gateway whose callers are CVAT's."""
    _, components = msgspec.json.schema_components(
        [
            ClientEventsRequest,
            ClientEvents,
            Error,
            ExportStarted,
            ExportProgress,
            ExportFailed,
            RqId,
            RequestAnswer,
            PaginatedRequestList,
        ],
        ref_template=_REF,
    )
    _timestamps(components)
    _client_events(components)
    post = {
        "operationId": "events_create",
        "summary": "Log client events",
        "parameters": _ORG_PARAMETERS,
        "requestBody": {"required": True, **_json("ClientEventsRequest")},
        "responses": {
            "201": {
                "description": "the enriched events, durably in Kafka",
                **_json("ClientEvents"),
            },
            **{str(s): _error(s) for s in (400, 401, 403, 404, 408, 413, 415, 429, 502, 503)},
        },
    }
    get = {
        "operationId": "events_list",
        "summary": "Export the event log as CSV (asynchronous; deprecated by CVAT)",
        "deprecated": True,
        "parameters": [
            *_ORG_PARAMETERS,
            *_DEPRECATED_EXPORT_PARAMETERS,
            *_QUERY_ID_PARAMETERS,
            *_DEPRECATED_LOCATION_PARAMETERS,
        ],
        "responses": {
            "200": {
                "description": "the CSV file (action=download)",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            "201": {
                "description": "the export is ready",
                "headers": _DEPRECATION_HEADER,
                **_json("ExportProgress"),
            },
            "202": {
                "description": "an export started (query_id) or still running",
                "headers": _DEPRECATION_HEADER,
                "links": _POLL_EXPORT,
                "content": {
                    JSON_MEDIA_TYPE: {
                        "schema": {
                            "oneOf": [
                                {"$ref": _REF.format(name="ExportStarted")},
                                {"$ref": _REF.format(name="ExportProgress")},
                            ]
                        }
                    }
                },
            },
            "500": {
                "description": "the export failed",
                "headers": _DEPRECATION_HEADER,
                **_json("ExportFailed"),
            },
            **{str(s): _error(s) for s in (400, 401, 403, 404, 429, 502, 503)},
        },
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "eventpipe events API (CVAT-compatible)", "version": "1"},
        "paths": {"/api/events": {"post": post, "get": get}, **_requests_paths()},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "tokenAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'Token <key>' with a key from `eventpipe tokens create`",
                },
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token, or a JWT when the server is configured for one",
                },
            },
        },
        "security": [{"basicAuth": []}, {"tokenAuth": []}, {"bearerAuth": []}],
    }
    if cvat:
        _with_cvat_credentials(document)
    return document


# With EVENTPIPE_CVAT_URL every credential is CVAT's and forwarded to it, and CVAT's web UI
# session is one too: its cookie alone reads; a POST also needs the CSRF cookie and the header
# that Django checks against it (else 403).
_CVAT_SCHEMES: Final = {
    "basicAuth": {"type": "http", "scheme": "basic", "description": "a CVAT user's password"},
    "tokenAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "'Token <key>' with a CVAT API key (cvat-sdk, cvat-cli)",
    },
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "a CVAT access token"},
    "cvatSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "CVAT's web UI session",
    },
    "cvatCsrfCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": CSRF_COOKIE,
        "description": "CVAT's CSRF cookie, sent with the session on a POST",
    },
    "cvatCsrfHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRFToken",
        "description": "the csrftoken cookie's token (plain or masked), with the session on a POST",
    },
}


_SESSION_READS: Final[dict[str, list[str]]] = {"cvatSession": []}
_SESSION_POSTS: Final[dict[str, list[str]]] = {
    "cvatSession": [],
    "cvatCsrfCookie": [],
    "cvatCsrfHeader": [],
}


def _with_cvat_credentials(document: dict[str, Any]) -> None:
    document["components"]["securitySchemes"] = _CVAT_SCHEMES
    for operations in document["paths"].values():
        for method, operation in operations.items():
            # Every operation here is a GET or a POST: Django checks CSRF on the POSTs only.
            session = _SESSION_READS if method == "get" else _SESSION_POSTS
            operation["security"] = [*document["security"], session]


@functools.cache
def _encoded(cvat: bool) -> bytes:
    return msgspec.json.encode(schema_document(cvat))


async def get_schema(request: Request) -> Response:
    cvat = request.app.state.cvat is not None
    return Response(_encoded(cvat), media_type=JSON_MEDIA_TYPE)
