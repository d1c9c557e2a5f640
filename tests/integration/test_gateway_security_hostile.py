"""Hostile input over real HTTP against a real broker: every malformed, oversized, out-of-range or
stalled request gets a 4xx JSON error naming the problem, never a 5xx, and nothing reaches Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import orjson
import pytest

from eventpipe.settings import Settings
from tests.integration.gateway_support import (
    decode_message,
    events_topic_size,
    topic_records,
)
from tests.integration.security_support import World, serving

MAX_BODY = 32 * 1024
GOOD_EVENT = b'{"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z"}'


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    settings = settings.with_overrides(
        max_body_bytes=MAX_BODY, body_read_timeout_seconds=0.5, header_read_timeout_seconds=0.5
    )
    with serving(settings, ["alice"], [("acme", "alice", "owner")]) as world:
        yield world


def events_body(event: bytes) -> bytes:
    return b'{"events": [' + event + b'], "timestamp": "2026-01-01T00:00:00Z"}'


def with_field(raw_value: bytes) -> bytes:
    return events_body(GOOD_EVENT[:-1] + b', "job_id": ' + raw_value + b"}")


# body -> (status, field, words in the error)
HOSTILE: dict[str, tuple[bytes, int, str | None, str]] = {
    "empty body": (b"", 400, None, "not valid JSON"),
    "truncated": (events_body(GOOD_EVENT)[:-7], 400, None, "not valid JSON"),
    "not an object": (b"[1, 2, 3]", 400, None, "Expected `object`"),
    "a bare string": (b'"events"', 400, None, "Expected `object`"),
    "trailing garbage": (events_body(GOOD_EVENT) + b"}{", 400, None, "not valid JSON"),
    "events not a list": (
        b'{"events": {"0": 1}, "timestamp": "2026-01-01T00:00:00Z"}',
        400,
        "events",
        "Expected `array`",
    ),
    "deeply nested body": (
        b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b', "timestamp": "2026-01-01T00:00:00Z"}',
        400,
        "events[0]",
        "Expected `object`",
    ),
    "huge integer": (with_field(b"9" * 40), 400, "events[0].job_id", "job_id"),
    "integer past int64": (with_field(b"9223372036854775808"), 400, "events[0].job_id", "<="),
    "negative id": (with_field(b"-1"), 400, "events[0].job_id", ">= 0"),
    "float id": (with_field(b"1.5"), 400, "events[0].job_id", "Expected `int"),
    "NaN": (with_field(b"NaN"), 400, None, "not valid JSON"),
    "Infinity": (with_field(b"Infinity"), 400, None, "not valid JSON"),
    "huge exponent": (with_field(b"1e400"), 400, "events[0].job_id", "out of range"),
    "SQL in an id": (with_field(b'"1 OR 1=1"'), 400, "events[0].job_id", "got `str`"),
    "SQL as an id string": (with_field(b'"1; DROP TABLE events"'), 400, "events[0].job_id", "str"),
    "count past uint32": (
        events_body(GOOD_EVENT[:-1] + b', "count": 4294967296}'),
        400,
        "events[0].count",
        "<=",
    ),
    "timestamp not a date": (
        events_body(b'{"scope": "load:job", "timestamp": "now(); DROP TABLE events"}'),
        400,
        "events[0].timestamp",
        "datetime",
    ),
    "timestamp year 0": (
        events_body(b'{"scope": "load:job", "timestamp": "0000-01-01T00:00:00Z"}'),
        400,
        "events[0].timestamp",
        "",
    ),
    "invalid utf-8 in a string": (
        events_body(GOOD_EVENT[:-1] + b', "obj_name": "\xc3\x28"}'),
        400,
        None,
        "not valid JSON",
    ),
    "lone surrogate escape": (
        events_body(GOOD_EVENT[:-1] + b', "obj_name": "\\ud800"}'),
        400,
        None,
        "not valid JSON",
    ),
    "scope with SQL": (
        events_body(b'{"scope": "load:job\' OR \'1\'=\'1", "timestamp": "2026-01-01T00:00:00Z"}'),
        400,
        "events[0].scope",
        "is not allowed",
    ),
    "oversized": (events_body(GOOD_EVENT) + b" " * MAX_BODY, 413, None, f"exceeds {MAX_BODY}"),
    "null bytes": (b"\x00" * 64, 400, None, "not valid JSON"),
    # Was a 500: the decoder ran out of recursion on an unknown field nested 5,000 deep.
    "nested too deeply": (b'{"x": ' + b"[" * 5000, 400, None, "too deeply"),
}


@pytest.mark.parametrize("case", HOSTILE.keys())
async def test_hostile_bodies_are_4xx_json_naming_the_problem(world: World, case: str) -> None:
    content, status, field, words = HOSTILE[case]
    async with httpx.AsyncClient(base_url=world.gateway.url, auth=("alice", "alice-pw")) as http:
        response = await http.post(
            "/api/events", content=content, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["field"] == field
    assert words in response.json()["error"]
    assert await events_topic_size(world.settings) == 0


async def test_sql_and_markup_in_string_fields_are_stored_as_plain_text(world: World) -> None:
    hostile = "x'); DROP TABLE events; -- <script>=cmd|' /C calc'!A0"
    event = {"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z", "obj_name": hostile}
    async with httpx.AsyncClient(base_url=world.gateway.url, auth=("alice", "alice-pw")) as http:
        response = await http.post(
            "/api/events",
            json={"events": [event], "timestamp": "2026-01-01T00:00:00Z"},
            headers={"X-Organization": "acme"},
        )
    assert response.status_code == 201
    [record] = await topic_records(world.settings, expected=1)
    assert decode_message(record).events[0].obj_name == hostile


@pytest.mark.parametrize("org", ["acme' OR '1'='1", "acme; DROP TABLE orgs", "../../etc"])
async def test_sql_in_the_org_selector_is_400_naming_it(world: World, org: str) -> None:
    async with httpx.AsyncClient(base_url=world.gateway.url, auth=("alice", "alice-pw")) as http:
        response = await http.post(
            "/api/events",
            params={"org": org},
            content=events_body(GOOD_EVENT),
            headers={"Content-Type": "application/json"},
        )
    # No organization can be called that, so it is refused before any lookup.
    assert (response.status_code, response.json()["field"]) == (400, "org")
    assert await events_topic_size(world.settings) == 0


async def connect(world: World) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw connection to the gateway, for what an HTTP client would not send."""
    host, port = world.gateway.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The head and body of the next answer on a kept-alive connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, await reader.readexactly(length)


async def send_and_stall(world: World, data: bytes) -> tuple[bytes, bytes]:
    """Send ``data`` on a fresh connection and nothing more; the head and body of the answer the
    gateway gives before it closes the connection."""
    reader, writer = await connect(world)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in head.lower()
    return head, payload


async def test_a_stalled_upload_is_cut_off_with_408(world: World) -> None:
    body = events_body(GOOD_EVENT)
    # The rest of the body never comes; the gateway answers 408 after 0.5 s.
    _, payload = await send_and_stall(
        world,
        b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Basic YWxpY2U6YWxpY2UtcHc=\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body[:20],
    )
    assert b"did not arrive within 0.5 s" in payload
    assert await events_topic_size(world.settings) == 0


@pytest.mark.parametrize(
    "head",
    [
        b"",  # connects and says nothing
        b"POST /api/ev",  # part of a request line
        b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: appl",  # trickling headers
    ],
)
async def test_a_stalled_request_head_is_cut_off_with_408(world: World, head: bytes) -> None:
    _, payload = await send_and_stall(world, head)
    assert orjson.loads(payload)["error"] == (
        "the request line and headers did not arrive within 0.5 s"
    )


async def test_the_head_deadline_restarts_for_each_request_on_a_kept_alive_connection(
    world: World,
) -> None:
    """Requests on one connection, each head sent in two parts well inside the deadline, but
    together over it: each is answered."""
    reader, writer = await connect(world)
    for _ in range(3):
        writer.write(b"GET /health/live HTTP/1.1\r\n")
        await asyncio.sleep(0.3)
        writer.write(b"Host: x\r\n\r\n")
        head, _ = await read_answer(reader)
        assert head.startswith(b"HTTP/1.1 200"), head
    writer.close()


async def test_a_websocket_upgrade_is_answered_as_plain_http(world: World) -> None:
    reader, writer = await connect(world)
    writer.write(
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"content-type: application/json" in head.lower()


async def test_pipelined_requests_are_answered_whole_and_in_order(world: World) -> None:
    """Requests sent together on one connection: each answer arrives complete, in order."""
    reader, writer = await connect(world)
    paths = [b"/health/live", b"/no/such/path", b"/health/live"]
    writer.write(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path for path in paths))
    statuses = []
    for _ in paths:
        head, body = await read_answer(reader)
        orjson.loads(body)
        statuses.append(int(head[9:12]))
    writer.close()
    assert statuses == [200, 404, 200]
