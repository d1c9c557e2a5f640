"""One send per response: the writes of one event-loop step reach the connection as one."""

from __future__ import annotations

import asyncio
from typing import Any

from ingest_gateway.response_transport import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__(extra={"peername": ("127.0.0.1", 5000)})
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def _next_step() -> None:
    await asyncio.sleep(0)


def _run(scenario: Any) -> RecordingTransport:
    async def main() -> RecordingTransport:
        connection = RecordingTransport()
        await scenario(CoalescingTransport(connection, asyncio.get_running_loop()), connection)
        return connection

    return asyncio.run(main())


def test_head_and_body_written_in_one_step_go_out_as_one_write() -> None:
    async def scenario(transport: CoalescingTransport, connection: RecordingTransport) -> None:
        transport.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        assert connection.writes == [], "nothing is sent before the step ends"
        await _next_step()

    connection = _run(scenario)
    assert connection.writes == [b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}"]


def test_a_streamed_response_goes_out_in_order_one_step_at_a_time() -> None:
    async def scenario(transport: CoalescingTransport, connection: RecordingTransport) -> None:
        transport.write(b"head")
        await _next_step()
        assert connection.writes == [b"head"], "a held head does not wait for a slow body"
        transport.write(b"chunk 1")
        await _next_step()
        transport.write(b"chunk 2")
        transport.write(b"end")
        await _next_step()

    assert _run(scenario).writes == [b"head", b"chunk 1", b"chunk 2end"]


def test_close_sends_what_is_held_first() -> None:
    async def scenario(transport: CoalescingTransport, connection: RecordingTransport) -> None:
        transport.write(b"head")
        transport.write(b"body")
        transport.close()
        assert connection.writes == [b"headbody"]
        assert connection.closed and transport.is_closing()
        await _next_step()

    assert _run(scenario).writes == [b"headbody"], "the scheduled flush sends nothing twice"


def test_nothing_is_written_to_a_connection_closed_under_it() -> None:
    async def scenario(transport: CoalescingTransport, connection: RecordingTransport) -> None:
        transport.write(b"answer")
        connection.close()  # the client went away before the step ended
        await _next_step()

    assert _run(scenario).writes == []


def test_connection_details_come_from_the_connection() -> None:
    async def scenario(transport: CoalescingTransport, connection: RecordingTransport) -> None:
        assert transport.get_extra_info("peername") == ("127.0.0.1", 5000)
        assert transport.get_extra_info("sockname", "unknown") == "unknown"

    _run(scenario)
