"""Every error the gateway answers is JSON ``{"error": ..., "field": ...}`` (plus ``index`` for an
event), so clients can rely on one shape whatever went wrong."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec
import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from eventpipe.identity_db import IdentityStoreUnavailableError

JSON_MEDIA_TYPE = "application/json"

_log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised anywhere while handling a request; becomes a JSON error response."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        field: str | None = None,
        index: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.field = field
        self.index = index
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.error, "field": self.field}
        if self.index is not None:
            body["index"] = self.index
        return body


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=JSON_MEDIA_TYPE)


def struct_response(
    status: int, body: msgspec.Struct, headers: Mapping[str, str] | None = None
) -> Response:
    """An answer declared as a Struct (the OpenAPI document is generated from the same one)."""
    return Response(msgspec.json.encode(body), status, headers=headers, media_type=JSON_MEDIA_TYPE)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response(exc.status, exc.body(), exc.headers)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, in the same JSON shape as ours."""
    assert isinstance(exc, HTTPException)
    return json_response(exc.status_code, {"error": exc.detail, "field": None}, exc.headers)


# Every 401 says how to authenticate, as HTTP requires.
CHALLENGE = {"WWW-Authenticate": 'Basic realm="eventpipe"'}


def unauthorized(error: str) -> ApiError:
    return ApiError(401, error, headers=CHALLENGE)


# Seconds a client is asked to wait when something the answer depends on cannot be reached.
RETRY_AFTER_SECONDS = 5


def unavailable(error: str, retry_after_seconds: int = RETRY_AFTER_SECONDS) -> ApiError:
    """A 503 with ``Retry-After``: nothing the client did wrong, and worth asking again."""
    return ApiError(503, error, headers={"Retry-After": str(retry_after_seconds)})


async def identity_unavailable_handler(request: Request, exc: Exception) -> Response:
    """The identity store is down: the caller cannot be checked now, which is no client error.

    The reason names the store's host and database: it goes to the log, not to the caller."""
    _log.warning("answering 503: %s", exc)
    return await api_error_handler(
        request, unavailable("the identity store cannot be reached; retry later")
    )


EXCEPTION_HANDLERS = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    IdentityStoreUnavailableError: identity_unavailable_handler,
}
