"""The gateway's trust boundary over real HTTP against a real broker: revoked tokens, guessing
clients, and what every refusal leaves behind (nothing in Kafka)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest

from eventpipe.settings import Settings
from tests.integration.gateway_support import (
    decode_message,
    events_topic_size,
    topic_records,
)
from tests.integration.security_support import World, serving

JWT_SECRET = "integration-secret-" + "x" * 16
# Beyond the token cache time: the round trips of the posts that find out, on a busy machine.
REFUSAL_SLACK = 1.0


def idp_token(**overrides: object) -> str:
    claims = {
        "sub": "900",
        "preferred_username": "carol",
        "email": "carol@idp.example",
        "aud": "eventpipe",
        "exp": int(time.time()) + 300,
        "orgs": [{"id": 77, "slug": "idp-org", "role": "worker"}],
        **overrides,
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    settings = settings.with_overrides(
        token_cache_seconds=0.3,
        login_failure_limit=3,
        login_backoff_seconds=30.0,
        jwt_hs256_secret=JWT_SECRET,
        jwt_audience="eventpipe",
    )
    with serving(settings, ["alice", "bob"]) as world:
        yield world


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
    revoked_at = time.monotonic()
    # Until the cached answer runs out the token may still post; each such post is stored.
    accepted = 1
    deadline = revoked_at + world.settings.token_cache_seconds + REFUSAL_SLACK
    while (refused := await post(world, headers=headers)).status_code == 201:
        accepted += 1
        assert time.monotonic() < deadline, "a revoked token still posts after the cache time"
        await asyncio.sleep(0.05)
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid credentials", "field": None}
    assert await events_topic_size(world.settings) == accepted


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


async def test_a_jwt_caller_posts_in_an_org_its_claims_name(world: World) -> None:
    headers = {"Authorization": f"Bearer {idp_token()}", "X-Organization": "idp-org"}
    response = await post(world, headers=headers)
    assert response.status_code == 201, response.text
    [record] = await topic_records(world.settings, expected=1)
    assert record.key == b"org:77"
    identity = decode_message(record).identity
    assert (identity.user_id, identity.user_name, identity.user_email) == (
        900,
        "carol",
        "carol@idp.example",
    )
    assert (identity.org_id, identity.org_slug) == (77, "idp-org")


# Tokens are made when the test runs: made at collection, a valid one could expire before its
# test starts in a long suite.
@pytest.mark.parametrize(
    ("make_token", "org", "status", "words"),
    [
        (lambda: idp_token(exp=int(time.time()) - 120), None, 401, "expired"),
        (lambda: idp_token(aud="someone-else"), None, 401, "not meant for this service"),
        (lambda: jwt.encode({"sub": "1"}, "wrong-secret-" + "y" * 20), None, 401, "signature"),
        (idp_token, "other-org", 403, "not a member of organization 'other-org'"),
    ],
)
async def test_bad_jwts_and_unclaimed_orgs_are_refused(
    world: World, make_token: Callable[[], str], org: str | None, status: int, words: str
) -> None:
    token = make_token()
    headers = {"Authorization": f"Bearer {token}", **({"X-Organization": org} if org else {})}
    response = await post(world, headers=headers)
    assert response.status_code == status
    assert words in response.json()["error"]
    assert await events_topic_size(world.settings) == 0
