"""The request-head deadline lives in a subclass of uvicorn's ``HttpToolsProtocol``.

It overrides the protocol's connection hooks and the parser callbacks ``on_message_begin`` and
``on_headers_complete``, and reads the protocol's ``loop``, ``transport`` and ``app_state``. None
of that is uvicorn's public API, so uvicorn is pinned in pyproject.toml, and these tests drive the
real protocol with real bytes: a release that renames or stops calling any of them fails here.
"""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from ingest_gateway.http_protocol import HEAD_TIMEOUT_STATE_KEY, UVICORN_PROTOCOLS

DEADLINE_SECONDS = 0.05


class Connection(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__(extra={"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 80)})
        self.sent = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def no_content(scope: object, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def serve(data: bytes) -> Connection:
    """Feed ``data`` to a fresh protocol and wait past the deadline."""
    config = Config(app=no_content, lifespan="off", log_level="critical")
    protocol = UVICORN_PROTOCOLS["http"](
        config, ServerState(), {HEAD_TIMEOUT_STATE_KEY: DEADLINE_SECONDS}
    )
    connection = Connection()
    protocol.connection_made(connection)
    if data:
        protocol.data_received(data)
    await asyncio.sleep(DEADLINE_SECONDS * 4)
    protocol.connection_lost(None)
    return connection


async def test_a_connection_that_sends_nothing_gets_408_and_is_closed() -> None:
    connection = await serve(b"")
    assert connection.sent.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert connection.closed


async def test_a_head_cut_short_gets_408_after_its_first_byte_started_the_clock() -> None:
    connection = await serve(b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Le")
    assert connection.sent.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"did not arrive within 0.05 s" in connection.sent


async def test_a_complete_head_stops_the_clock() -> None:
    connection = await serve(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert connection.sent.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"408" not in connection.sent


async def test_the_next_head_on_a_kept_alive_connection_has_a_deadline_of_its_own() -> None:
    connection = await serve(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HT")
    first, _, second = connection.sent.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 204 No Content")
    assert second.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
