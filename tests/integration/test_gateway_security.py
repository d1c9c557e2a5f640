"""The gateway's trust boundary over real HTTP against a real broker: revoked tokens, guessing
clients, and what every refusal leaves behind (nothing in Kafka)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from tests.integration.gateway_support import RunningGateway, events_topic_size, running_gateway


@dataclass
class World:
    gateway: RunningGateway
    settings: Settings
    store: IdentityStore


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    settings = settings.with_overrides(
        token_cache_seconds=0.3, login_failure_limit=3, login_backoff_seconds=30.0
    )
    store = IdentityStore(settings.data_dir)
    store.add_user("alice", "alice-pw")
    store.add_user("bob", "bob-pw")
    with running_gateway(settings) as gateway:
        yield World(gateway, settings, store)


def body() -> dict[str, object]:
    return {
        "events": [{"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z"}],
        "timestamp": "2026-01-01T00:00:00Z",
    }


async def post(world: World, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=world.gateway.url) as client:
        return await client.post("/api/events", json=body(), **kwargs)  # type: ignore[arg-type]


async def test_a_revoked_token_is_refused_within_the_token_cache_time(world: World) -> None:
    token = world.store.create_token("alice")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await post(world, headers=headers)).status_code == 201
    world.store.revoke_token(token)
    await asyncio.sleep(0.4)
    refused = await post(world, headers=headers)
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid credentials", "field": None}
    assert await events_topic_size(world.settings) == 1


async def test_repeated_failed_logins_get_429_with_retry_after(world: World) -> None:
    for _ in range(3):
        assert (await post(world, auth=("alice", "guess"))).status_code == 401
    locked = await post(world, auth=("alice", "alice-pw"))
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "30"
    assert locked.headers["content-type"] == "application/json"
    assert "too many failed logins" in locked.json()["error"]
    # Only that pair is locked out: bob logs in from the same address.
    assert (await post(world, auth=("bob", "bob-pw"))).status_code == 201
    assert await events_topic_size(world.settings) == 1
