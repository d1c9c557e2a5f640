"""How a handler describes itself in an OpenAPI document: an :class:`Operation` declared beside
the handler with :func:`documented`, or :func:`unpublished` for a route the document leaves out
on purpose, and the pieces operations share (error answers, query parameters, JSON bodies).

:mod:`ingest_gateway.openapi` assembles the events API's document from the app's routes, so a
route whose handler says neither cannot be served: the document would silently miss it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ingest_gateway.errors import JSON_MEDIA_TYPE

REF: Final = "#/components/schemas/{name}"

Handler = Callable[[Request], Awaitable[Response]]
H = TypeVar("H", bound=Handler)


class Error(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every error answer: what went wrong, the parameter or field at fault, the event's index."""

    error: str
    field: str | None
    index: int | None = None


# What each error status means on the events API, unless an operation says more precisely.
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


def json_content(ref: str) -> dict[str, Any]:
    """A JSON body of the component schema ``ref``."""
    return {"content": {JSON_MEDIA_TYPE: {"schema": {"$ref": REF.format(name=ref)}}}}


def error_answer(status: int, description: str | None = None) -> dict[str, Any]:
    """An :class:`Error` answer; 429 and 503 also name their ``Retry-After`` header."""
    answer = {"description": description or _ERRORS[status], **json_content("Error")}
    if status in (429, 503):
        answer["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return answer


def error_answers(*statuses: int) -> dict[str, Any]:
    """The answers of these statuses, each with its usual meaning."""
    return {str(status): error_answer(status) for status in statuses}


def link(operation_id: str, parameter: str, field: str, description: str) -> dict[str, Any]:
    """A link from an answer to the operation that follows it, its ``parameter`` taken from the
    answer's ``field``: lets a client (or a stateful fuzzer) follow what it started."""
    return {
        "operationId": operation_id,
        "parameters": {parameter: f"$response.body#/{field}"},
        "description": description,
    }


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One operation of the document, as the handler that answers it declares it."""

    operation_id: str
    summary: str
    parameters: Sequence[Mapping[str, Any]]
    responses: Mapping[str, Any]
    request_body: Mapping[str, Any] | None = None
    deprecated: bool = False
    # The Structs its bodies name (``$ref``), published as the document's components.
    schemas: tuple[type[msgspec.Struct], ...] = ()
    # What msgspec cannot say about those components, said after they are generated.
    refine: Callable[[dict[str, Any]], None] | None = None

    def openapi(self) -> dict[str, Any]:
        """The operation object of the document."""
        operation: dict[str, Any] = {"operationId": self.operation_id, "summary": self.summary}
        if self.deprecated:
            operation["deprecated"] = True
        operation["parameters"] = list(self.parameters)
        if self.request_body is not None:
            operation["requestBody"] = dict(self.request_body)
        operation["responses"] = dict(self.responses)
        return operation


class UndocumentedRoute(Exception):
    """A route whose handler has no :class:`Operation` and is not :func:`unpublished`."""


# handler -> its operation, or None for a handler left out of the document on purpose.
_DESCRIPTIONS: dict[Handler, Operation | None] = {}


def documented(operation: Operation) -> Callable[[H], H]:
    """Declare the operation a handler answers (as a decorator)."""

    def register(handler: H) -> H:
        _DESCRIPTIONS[handler] = operation
        return handler

    return register


def unpublished(handler: H) -> H:
    """Leave a handler out of the document on purpose (probes, the document itself)."""
    _DESCRIPTIONS[handler] = None
    return handler


def operation_of(handler: Handler, path: str) -> Operation | None:
    """The handler's operation, None when it is unpublished; raises for one that says neither."""
    try:
        return _DESCRIPTIONS[handler]
    except KeyError:
        raise UndocumentedRoute(
            f"the handler of {path} ({handler.__module__}.{handler.__qualname__}) declares no"
            " OpenAPI operation: decorate it with @documented(Operation(...)) or @unpublished"
        ) from None


@unpublished
async def serve_document(request: Request) -> Response:
    """``GET /api/schema``: the app's OpenAPI document, encoded when the app was made."""
    document: bytes = request.app.state.schema
    return Response(document, media_type=JSON_MEDIA_TYPE)
