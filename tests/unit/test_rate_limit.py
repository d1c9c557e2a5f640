"""Per-tenant token buckets: a burst, a steady rate, debt for large requests, per-process shares."""

from __future__ import annotations

import pytest

from eventpipe.settings import Settings
from ingest_gateway.errors import ApiError
from ingest_gateway.limits.in_memory import TenantRateLimiter
from tests.support.clock import ManualClock


def retry_after(limiter: TenantRateLimiter, tenant: bytes) -> int | None:
    try:
        limiter.admit(tenant)
    except ApiError as error:
        assert (error.status, error.field) == (429, "events")
        assert "rate limit" in error.error
        return int(error.headers["Retry-After"])
    return None


async def test_a_tenant_gets_its_burst_then_its_rate() -> None:
    clock = ManualClock(50.0)
    limiter = TenantRateLimiter(100, 300, clock=clock)
    for _ in range(3):
        assert retry_after(limiter, b"org:1") is None
        await limiter.take(b"org:1", 100)
    assert retry_after(limiter, b"org:1") == 1
    assert retry_after(limiter, b"org:2") is None  # another tenant is untouched
    clock.now += 0.5  # 50 events refilled
    assert retry_after(limiter, b"org:1") is None
    await limiter.take(b"org:1", 50)
    assert retry_after(limiter, b"org:1") == 1
    clock.now += 1000  # refills only up to the burst
    await limiter.take(b"org:1", 300)
    assert retry_after(limiter, b"org:1") == 1


async def test_a_request_larger_than_what_is_left_is_paid_back_before_the_next() -> None:
    clock = ManualClock(50.0)
    limiter = TenantRateLimiter(100, 100, clock=clock)
    limiter.admit(b"user:1")
    await limiter.take(b"user:1", 1000)  # 900 events of debt: 9 s at 100 events/s
    assert retry_after(limiter, b"user:1") == 9
    clock.now += 8.5
    assert retry_after(limiter, b"user:1") == 1
    clock.now += 0.6
    assert retry_after(limiter, b"user:1") is None


async def test_each_process_enforces_its_share() -> None:
    clock = ManualClock(50.0)
    limiter = TenantRateLimiter(100, 400, processes=4, clock=clock)
    await limiter.take(b"org:1", 100)
    assert retry_after(limiter, b"org:1") == 1
    clock.now += 0.4  # 25 events/s per process: 10 events back
    assert retry_after(limiter, b"org:1") is None


async def test_settings_build_the_limiter_and_zero_disables_it() -> None:
    assert TenantRateLimiter.from_settings(Settings(tenant_events_per_second=0)) is None
    assert TenantRateLimiter.from_settings(Settings()) is not None


async def test_full_buckets_are_forgotten_when_there_are_too_many_tenants() -> None:
    clock = ManualClock(50.0)
    limiter = TenantRateLimiter(10, 10, clock=clock, max_tenants=3)
    await limiter.take(b"busy", 20)
    for tenant in (b"a", b"b", b"c", b"d"):
        limiter.admit(tenant)
    # The busy tenant's debt survived the cleanup; the idle ones were dropped and recreated.
    assert retry_after(limiter, b"busy") == 1


@pytest.mark.parametrize("rate", [0.5, 3.0])
async def test_retry_after_is_at_least_one_second(rate: float) -> None:
    limiter = TenantRateLimiter(rate, 1, clock=ManualClock(50.0))
    await limiter.take(b"t", 2)  # one event of debt
    assert retry_after(limiter, b"t") == {0.5: 2, 3.0: 1}[rate]
