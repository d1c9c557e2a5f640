"""Tenant limits and the login throttle kept in a real Redis server: every gateway process (here
two limiters with their own connections, as two processes have) shares one budget, and a Redis
outage fails open or closed as configured."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from eventpipe.settings import Settings, SettingsError
from eventpipe_cli.embedded_broker import free_port
from ingest_gateway.errors import ApiError
from ingest_gateway.limits.in_redis import RedisLoginThrottle, RedisTenantRateLimiter
from ingest_gateway.limits.redis_client import RedisClient
from tests.server_processes import redis_server


def shared(url: str, failure: str = "open", prefix: str = "eventpipe:") -> RedisClient:
    state = RedisClient.from_settings(
        Settings(
            rate_limit_redis_url=url,
            rate_limit_redis_failure=failure,
            rate_limit_redis_prefix=prefix,
        )
    )
    assert state is not None
    return state


def limiter(url: str, rate: float, burst: int, failure: str = "open") -> RedisTenantRateLimiter:
    return RedisTenantRateLimiter(shared(url, failure), rate, burst)


async def refused(limiter: RedisTenantRateLimiter, tenant: bytes, events: int) -> int | None:
    """Retry-After of a refusal, None when admitted and taken."""
    try:
        limiter.admit(tenant)
        await limiter.take(tenant, events)
    except ApiError as error:
        assert (error.status, error.field) == (429, "events")
        return int(error.headers["Retry-After"])
    return None


async def taken(limiter: RedisTenantRateLimiter, tenant: bytes, events: int) -> bool:
    """Whether the shared bucket gave ``events``: Redis is asked even after a refusal."""
    try:
        await limiter.take(tenant, events)
    except ApiError as error:
        assert (error.status, error.field) == (429, "events")
        return False
    return True


def evalsha_calls(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_two_processes_share_one_budget(redis_url: str) -> None:
    # 300 events of burst, and a rate slow enough that the test's own time refills nothing.
    first, second = limiter(redis_url, 0.001, 300), limiter(redis_url, 0.001, 300)
    # The last request goes one event into debt, which the slow rate does not repay in time.
    for gateway, events in ((first, 100), (second, 100), (first, 101)):
        assert await refused(gateway, b"org:1", events) is None
    assert await refused(second, b"org:1", 1) is not None
    assert await refused(first, b"org:1", 1) is not None
    # Another tenant has a budget of its own.
    assert await refused(second, b"org:2", 300) is None


async def test_a_refusal_is_remembered_without_asking_redis_again(redis_url: str) -> None:
    gateway = limiter(redis_url, 100, 100)
    assert await refused(gateway, b"user:7", 1000) is None  # 900 events of debt: 9 s
    calls = evalsha_calls(redis_url)
    assert await refused(gateway, b"user:7", 1) == 9
    assert evalsha_calls(redis_url) == calls + 1
    for _ in range(5):
        assert await refused(gateway, b"user:7", 1) in (8, 9)
    assert evalsha_calls(redis_url) == calls + 1
    # The bucket expires once it would be full again, so idle tenants cost Redis nothing.
    with redis.Redis.from_url(redis_url) as client:
        assert 9_000 < client.pttl(b"eventpipe:tenant:user:7") <= 11_000


async def test_debt_is_paid_at_the_tenant_rate(redis_url: str) -> None:
    state = shared(redis_url)
    gateway = RedisTenantRateLimiter(state, 50, 10)
    try:
        started = time.monotonic()
        assert await refused(gateway, b"t", 20) is None  # 10 events of debt: 0.2 s at 50/s
        # Asked with take alone: admit answers from this process's memory of a refusal, and what
        # is measured here is the refill of the shared bucket.
        while not await taken(gateway, b"t", 1):
            assert time.monotonic() - started < 5, "the debt was never paid"
            await asyncio.sleep(0.02)
        paid_after = time.monotonic() - started
    finally:
        await state.close()
    # Redis's clock started after `started` and the admitting call ended before `paid_after`, so
    # a refill at the tenant rate takes at least the 0.2 s here (less 10 % for clock rates).
    assert paid_after >= 0.2 * 0.9, f"10 events of debt at 50/s were paid in {paid_after:.3f} s"


async def test_the_login_throttle_is_shared_and_stores_no_username(redis_url: str) -> None:
    first = RedisLoginThrottle(shared(redis_url), 2, 30.0)
    second = RedisLoginThrottle(shared(redis_url), 2, 30.0)
    key = ("10.0.0.1", "alice")
    await first.failed(key)
    await first.check(key)
    await second.failed(key)  # the allowance is used up across both processes
    for throttle in (first, second):
        with pytest.raises(ApiError) as caught:
            await throttle.check(key)
        assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "30"
    await second.failed(key)  # doubles
    with pytest.raises(ApiError) as caught:
        await first.check(key)
    assert caught.value.headers["Retry-After"] == "60"
    await first.check(("10.0.0.2", "alice"))  # another client is not locked out
    with redis.Redis.from_url(redis_url) as client:
        keys = client.keys("*")
    assert keys and not any(b"alice" in k or b"10.0.0.1" in k for k in keys)
    await first.succeeded(key)
    await second.check(key)


async def test_deployments_sharing_one_redis_keep_separate_budgets_by_key_prefix(
    redis_url: str,
) -> None:
    first, second = f"staging-{uuid.uuid4().hex[:8]}:", f"production-{uuid.uuid4().hex[:8]}:"
    staging = RedisTenantRateLimiter(shared(redis_url, prefix=first), 0.001, 100)
    staging_replica = RedisTenantRateLimiter(shared(redis_url, prefix=first), 0.001, 100)
    production = RedisTenantRateLimiter(shared(redis_url, prefix=second), 0.001, 100)
    # The same tenant name in both: staging spends its budget (and one event more), production
    # still has all of its.
    assert await refused(staging, b"org:1", 101) is None
    assert await refused(staging_replica, b"org:1", 1) is not None
    assert await refused(production, b"org:1", 101) is None
    assert await refused(production, b"org:1", 1) is not None
    # Failed logins too: a lockout in one deployment is none in the other.
    key = ("10.0.0.9", "alice")
    await RedisLoginThrottle(shared(redis_url, prefix=first), 1, 30.0).failed(key)
    with pytest.raises(ApiError):
        await RedisLoginThrottle(shared(redis_url, prefix=first), 1, 30.0).check(key)
    await RedisLoginThrottle(shared(redis_url, prefix=second), 1, 30.0).check(key)
    with redis.Redis.from_url(redis_url) as client:
        staging_keys = client.keys(f"{first}*")
        production_keys = client.keys(f"{second}*")
    # Staging's bucket, login failures and lockout; production's bucket alone.
    assert len(staging_keys) == 3 and f"{first}tenant:org:1".encode() in staging_keys
    assert production_keys == [f"{second}tenant:org:1".encode()]


@pytest.fixture
def redis_port() -> Iterator[int]:
    yield free_port()


async def test_an_outage_fails_open_or_closed_within_the_timeout(redis_port: int) -> None:
    url = f"redis://127.0.0.1:{redis_port}/0"
    open_limiter, closed_limiter = limiter(url, 1, 1, "open"), limiter(url, 1, 1, "closed")
    started = time.monotonic()
    assert await refused(open_limiter, b"t", 1000) is None
    with pytest.raises(ApiError) as caught:
        await closed_limiter.take(b"t", 1)
    assert caught.value.status == 503 and caught.value.headers["Retry-After"] == "1"
    assert time.monotonic() - started < 3
    throttle = RedisLoginThrottle(shared(url, "closed"), 1, 1.0)
    with pytest.raises(ApiError) as caught:
        await throttle.check(("h", "alice"))
    assert caught.value.status == 503
    # Failing open admits requests, not password guesses: this process throttles them itself.
    guessed = RedisLoginThrottle(shared(url, "open"), 1, 30.0)
    await guessed.check(("h", "alice"))
    await guessed.failed(("h", "alice"))
    with pytest.raises(ApiError) as caught:
        await guessed.check(("h", "alice"))
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "30"
    await guessed.check(("h", "bob"))

    # Redis comes back: within the pause the limits apply again, and the budget is shared.
    with redis_server(redis_port):
        deadline = time.monotonic() + 10
        while True:
            try:
                await closed_limiter.take(b"t", 2)  # one event of debt: 1 s
                break
            except ApiError as error:
                assert error.status == 503 and time.monotonic() < deadline
                await asyncio.sleep(0.02)
        assert await refused(closed_limiter, b"t", 1) is not None


def test_an_unknown_failure_mode_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="EVENTPIPE_RATE_LIMIT_REDIS_FAILURE"):
        shared("redis://127.0.0.1:1/0", "sometimes")
