"""Failed logins lock a (client, username) pair out for a doubling time; successes reset it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from eventpipe.identity import IdentityStore
from ingest_gateway.errors import ApiError
from ingest_gateway.identity.authentication import Authenticator
from ingest_gateway.limits.in_memory import LoginThrottle
from ingest_gateway.limits.interface import MAX_LOCKOUT_SECONDS
from tests.support.clock import ManualClock


async def locked_for(throttle: LoginThrottle, key: tuple[str, str]) -> int | None:
    """The Retry-After seconds while ``key`` is locked out, None when it may try."""
    try:
        await throttle.check(key)
    except ApiError as error:
        assert error.status == 429
        assert "too many failed logins" in error.error
        return int(error.headers["Retry-After"])
    return None


async def test_lockouts_start_after_the_allowance_and_double() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(3, 2.0, clock=clock)
    key = ("10.0.0.1", "alice")
    for _ in range(2):
        await throttle.failed(key)
        assert await locked_for(throttle, key) is None
    lockouts = []
    for _ in range(4):
        await throttle.failed(key)
        lockouts.append(await locked_for(throttle, key))
        clock.now += 100
    assert lockouts == [2, 4, 8, 16]
    # Others are not affected: another client for the same user, another user from the client.
    assert await locked_for(throttle, ("10.0.0.2", "alice")) is None
    assert await locked_for(throttle, ("10.0.0.1", "bob")) is None


async def test_lockouts_are_capped_expire_and_reset_on_success() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(1, 1.0, clock=clock)
    key = ("10.0.0.1", "alice")
    for _ in range(40):
        await throttle.failed(key)
    assert await locked_for(throttle, key) == MAX_LOCKOUT_SECONDS
    clock.now += MAX_LOCKOUT_SECONDS
    assert await locked_for(throttle, key) is None
    await throttle.succeeded(key)
    await throttle.failed(key)
    assert await locked_for(throttle, key) == 1
    # Failures long ago are forgotten: the next one starts from the allowance again.
    clock.now += MAX_LOCKOUT_SECONDS + 1
    await throttle.failed(key)
    assert await locked_for(throttle, key) == 1


async def test_zero_allowance_disables_the_throttle_and_memory_is_bounded() -> None:
    off = LoginThrottle(0, 1.0)
    for _ in range(100):
        await off.failed(("h", "alice"))
    assert await locked_for(off, ("h", "alice")) is None
    bounded = LoginThrottle(1, 1.0, max_clients=10)
    for i in range(100):
        await bounded.failed(("h", f"user{i}"))
    assert await locked_for(bounded, ("h", "user0")) is None
    assert await locked_for(bounded, ("h", "user99")) == 1


@pytest.fixture
def store(tmp_path: Path) -> IdentityStore:
    store = IdentityStore(tmp_path)
    store.add_user("alice", "right")
    return store


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


async def test_a_locked_out_client_is_refused_even_with_the_right_password(
    store: IdentityStore,
) -> None:
    auth = Authenticator(store, 60, throttle=LoginThrottle(2, 30.0))
    for _ in range(2):
        with pytest.raises(ApiError) as caught:
            await auth.authenticate(basic("alice", "wrong"), "10.0.0.1")
        assert caught.value.status == 401
    with pytest.raises(ApiError) as caught:
        await auth.authenticate(basic("alice", "right"), "10.0.0.1")
    assert (caught.value.status, caught.value.headers["Retry-After"]) == (429, "30")
    # Another machine of the same user still logs in, and guessed tokens count separately.
    assert (await auth.authenticate(basic("alice", "right"), "10.0.0.2")).username == "alice"
    for _ in range(2):
        with pytest.raises(ApiError):
            await auth.authenticate("Token guessed", "10.0.0.1")
    with pytest.raises(ApiError) as caught:
        await auth.authenticate(f"Token {store.create_token('alice')}", "10.0.0.1")
    assert caught.value.status == 429
