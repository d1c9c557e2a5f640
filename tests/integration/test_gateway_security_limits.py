"""Limits over real HTTP against a real broker: events per request, payload size and depth,
timestamps the table cannot store, and per-tenant rates. Each refusal is a 4xx JSON error naming
the limit, and nothing reaches Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from eventpipe.identity import OrgRole
from eventpipe.settings import Settings
from tests.integration.gateway_support import events_topic_size
from tests.integration.security_support import World, serving


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    settings = settings.with_overrides(
        max_events_per_request=5,
        max_payload_bytes=200,
        max_payload_depth=4,
        tenant_events_per_second=10.0,
        tenant_burst_events=20,
    )
    memberships: list[tuple[str, str, OrgRole]] = [
        ("noisy", "alice", "owner"),
        ("quiet", "bob", "owner"),
    ]
    with serving(settings, ["alice", "bob"], memberships) as world:
        yield world


def event(**fields: object) -> dict[str, object]:
    return {"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z", **fields}


def body(*events: dict[str, object]) -> dict[str, object]:
    # Sent "now", so the clock-skew correction leaves the event timestamps as they are.
    return {"events": list(events), "timestamp": datetime.now(UTC).isoformat()}


async def post(
    world: World, payload: object, user: str = "alice", org: str = "noisy"
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.gateway.url, auth=(user, f"{user}-pw")) as client:
        return await client.post(
            "/api/events",
            content=orjson.dumps(payload),
            headers={"Content-Type": "application/json", "X-Organization": org},
        )


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


LIMITED = {
    "too many events": (body(*[event()] * 6), 413, "events", "limit of 5 per request"),
    "payload too large": (
        body(event(), event(payload=orjson.dumps({"a": "x" * 300}).decode())),
        400,
        "events[1].payload",
        "limit of 200 bytes",
    ),
    "payload too large in utf-8": (
        body(event(payload=orjson.dumps("é" * 150).decode())),
        400,
        "events[0].payload",
        "limit of 200 bytes",
    ),
    "payload too deep": (
        body(event(payload=nested(5))),
        400,
        "events[0].payload",
        "deeper than the limit of 4",
    ),
    "payload past the parser's depth": (
        body(event(payload=nested(100))),
        400,
        "events[0].payload",
        "deeper than the limit of 4",
    ),
    "year before 1900": (
        body(event(timestamp="1899-12-31T00:00:00Z")),
        400,
        "events[0].timestamp",
        "outside 1900-01-01..2299-12-31",
    ),
    "year after 2299": (
        body(event(), event(timestamp="2300-01-01T00:00:00Z")),
        400,
        "events[1].timestamp",
        "outside 1900-01-01..2299-12-31",
    ),
    "previous event out of range": (
        {**body(event()), "previous_event": event(timestamp="1000-01-01T00:00:00Z")},
        400,
        "previous_event.timestamp",
        "cannot store",
    ),
}


@pytest.mark.parametrize("case", LIMITED.keys())
async def test_limits_are_4xx_json_naming_the_limit(world: World, case: str) -> None:
    payload, status, field, words = LIMITED[case]
    response = await post(world, payload)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["field"] == field
    assert words in response.json()["error"]
    assert await events_topic_size(world.settings) == 0


async def test_within_the_limits_is_accepted(world: World) -> None:
    payload = body(
        *[event(payload=nested(4)), event(payload='{"ok": "' + "x" * 180 + '"}')],
        event(timestamp="1900-01-01T00:00:01Z"),  # a second inside, for the skew
        event(timestamp="2299-12-31T23:59:58Z"),
    )
    response = await post(world, payload)
    assert response.status_code == 201, response.text


async def test_a_noisy_tenant_gets_429_and_the_quiet_one_is_unaffected(world: World) -> None:
    # 5 events each: the burst of 20 is gone after 4 requests, and 10 events/s refill slowly.
    responses = [await post(world, body(*[event()] * 5)) for _ in range(10)]
    statuses = [response.status_code for response in responses]
    assert statuses[:4] == [201] * 4
    limited = [response for response in responses if response.status_code == 429]
    assert len(limited) >= 4, statuses
    assert set(statuses) == {201, 429}
    for response in limited:
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["field"] == "events"
        assert "rate limit" in response.json()["error"]

    quiet = await post(world, body(*[event()] * 5), user="bob", org="quiet")
    assert quiet.status_code == 201
    # The noisy tenant's sandbox is another tenant too.
    async with httpx.AsyncClient(base_url=world.gateway.url, auth=("alice", "alice-pw")) as client:
        assert (await client.post("/api/events", json=body(event()))).status_code == 201
    assert await events_topic_size(world.settings) == statuses.count(201) + 2
