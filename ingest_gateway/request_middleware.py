"""The middleware around every request: an id for logs and answers, and the request counters.

Every request gets an id: the caller's ``X-Request-ID`` when it is a plausible token, else one
made here. It is sent back in the ``X-Request-ID`` answer header and set in
:data:`eventpipe.logs.request_id` for every log line written while the request is handled.

Each request also gets a fresh UUID for its Kafka message (:func:`message_id`), and the id is
that UUID unless the caller sent its own. A caller's id never becomes the message id: the events
table recognises a redelivered copy by that id, so a caller reusing one could make other events
vanish as copies.

Once the answer is sent, the request is counted by method, route and status, and the events an
endpoint reported with :func:`count_events` as accepted (201) or rejected (any other status).
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar
from typing import Final

from prometheus_client import Counter, Histogram
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventpipe import logs
from ingest_gateway.metrics import REQUEST_SECONDS, REQUESTS, events_answered

HEADER: Final = b"x-request-id"
# Letters, digits and the punctuation of common id formats (UUIDs, trace ids): nothing that
# could break a log line or a header.
_PLAUSIBLE_ID: Final = re.compile(rb"[A-Za-z0-9._:+/=-]{1,128}")
# Labels come from a fixed set, so a scan of random paths or methods cannot add time series.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER: Final = "other"


class _Handling:
    """What the endpoint tells the middleware about the request it handles."""

    __slots__ = ("events", "message_id")

    def __init__(self) -> None:
        self.message_id = uuid.uuid4()
        self.events: int | None = None


# Holds a mutable record, so that what an endpoint records reaches the middleware even from a
# task that runs in a copy of the request's context.
_handling: ContextVar[_Handling | None] = ContextVar("handling", default=None)


def message_id() -> uuid.UUID:
    """The id of the current request's Kafka message."""
    handling = _handling.get()
    return uuid.uuid4() if handling is None else handling.message_id


def count_events(count: int) -> None:
    """Count the current request's ``count`` events as accepted or rejected by its answer."""
    handling = _handling.get()
    if handling is not None:
        handling.events = count


class RequestMiddleware:
    """ASGI middleware: the request's ids, the ``X-Request-ID`` header and request metrics."""

    def __init__(self, app: ASGIApp, routes: frozenset[str]) -> None:
        self.app = app
        self.routes = routes
        # The labelled metrics, looked up once per label set: labels() costs several times more
        # than the update itself. Bounded: methods x routes x statuses.
        self._recorders: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        handling = _Handling()
        request_id = _caller_id(scope) or str(handling.message_id).encode()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (HEADER, request_id)]
                message = {**message, "headers": headers}
            await send(message)

        log_token = logs.request_id.set(request_id.decode())
        handling_token = _handling.set(handling)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _handling.reset(handling_token)
            logs.request_id.reset(log_token)
            # The matched route's template, so that /api/requests/{id} is one route, not one
            # per id (Starlette's router records the route in the scope it shares).
            route = scope.get("route")
            path = route.path if isinstance(route, Route) else scope["path"]
            requests, seconds = self._recorder(scope["method"], path, status)
            requests.inc()
            seconds.observe(time.perf_counter() - started)
            if handling.events is not None:
                events_answered(handling.events, status)

    def _recorder(self, method: str, path: str, status: int) -> tuple[Counter, Histogram]:
        key = (
            method if method in _METHODS else OTHER,
            path if path in self.routes else OTHER,
            status,
        )
        recorder = self._recorders.get(key)
        if recorder is None:
            recorder = (REQUESTS.labels(*key[:2], str(status)), REQUEST_SECONDS.labels(*key[:2]))
            self._recorders[key] = recorder
        return recorder


def _caller_id(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value if _PLAUSIBLE_ID.fullmatch(value) else None
    return None
