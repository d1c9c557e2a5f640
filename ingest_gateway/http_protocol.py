"""uvicorn's HTTP protocol, with a deadline for each request's head (request line and headers).

uvicorn closes connections that sit idle between requests, but not one that sends part of a
request line or trickles its headers: such a client holds a connection for as long as it likes,
and enough of them use up every connection the server can take (a slow loris). This protocol
answers 408 and closes the connection when a head is not complete within
``settings.header_read_timeout_seconds`` of the connection opening or of the request's first
byte. The body has a deadline of its own (:func:`ingest_gateway.events.body.read_body`).

uvicorn has no such deadline and no public hook for one, so this subclasses its
``HttpToolsProtocol``: uvicorn is pinned in pyproject.toml to the release this was written
against, and tests/unit/test_http_protocol.py fails when the hooks it overrides change.

The app hands the deadline over in its lifespan state (:func:`ingest_gateway.app.create_app`),
which uvicorn gives every protocol instance: one path for one or several worker processes, and
for the tests' in-process servers.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from eventpipe.logs import logging_config
from eventpipe.settings import Settings

HEAD_TIMEOUT_STATE_KEY: Final = "header_read_timeout_seconds"


def head_timeout_response(seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "error": f"the request line and headers did not arrive within {seconds:g} s",
            "field": None,
        }
    )
    return (
        b"HTTP/1.1 408 Request Timeout\r\n"
        b"content-type: application/json\r\n"
        b"connection: close\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    ) + body


class GatewayHttpProtocol(HttpToolsProtocol):
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The first byte of a further request on a kept-alive connection starts its deadline.
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self._head_seconds(), self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_seconds(self) -> float:
        seconds = self.app_state.get(HEAD_TIMEOUT_STATE_KEY, Settings.header_read_timeout_seconds)
        return float(seconds)

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.write(head_timeout_response(self._head_seconds()))
            self.transport.close()


# How uvicorn serves the gateway, here and in the tests' in-process servers alike. No endpoint is
# a WebSocket: an Upgrade header is then just a header.
UVICORN_PROTOCOLS: Final[dict[str, Any]] = {"http": GatewayHttpProtocol, "ws": "none"}


def uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """How uvicorn serves the API and the intake alike, on ``host:port``."""
    return {
        "host": host,
        "port": port,
        **UVICORN_PROTOCOLS,
        # uvicorn applies it in every worker process it starts.
        "log_config": logging_config(settings),
        "log_level": settings.log_level.lower(),
        # One log line per request costs a large share of the throughput; errors are still logged.
        "access_log": settings.log_level == "DEBUG",
    }
