"""SingleFlightCache: concurrent misses share one load, only real results are kept, a load outlives
its cancelled waiters, and a per-get time to live shorter than the cache's is honoured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ingest_gateway.single_flight import SingleFlightCache
from tests.support.clock import ManualClock


class Loader:
    """A load that counts its calls and gives ``value`` (or raises ``error``) once released."""

    def __init__(self, value: str | None = "value", error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> str | None:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.value


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds (the loads here finish in a few turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_a_load_that_raises_is_not_cached() -> None:
    cache: SingleFlightCache[str, str | None] = SingleFlightCache(60, 10)
    failing = Loader(error=RuntimeError("lookup failed"))
    with pytest.raises(RuntimeError, match="lookup failed"):
        await cache.get("key", failing)
    assert cache.cached("key") is None
    loader = Loader()
    assert await cache.get("key", loader) == "value"
    assert loader.calls == 1


async def test_a_load_returning_none_is_not_cached() -> None:
    cache: SingleFlightCache[str, str | None] = SingleFlightCache(60, 10)
    nothing = Loader(value=None)
    assert await cache.get("key", nothing) is None
    assert await cache.get("key", nothing) is None
    assert nothing.calls == 2


async def test_a_none_result_takes_no_room_from_kept_results() -> None:
    cache: SingleFlightCache[str, str | None] = SingleFlightCache(60, 1)
    assert await cache.get("kept", Loader()) == "value"
    assert await cache.get("missing", Loader(value=None)) is None
    assert cache.cached("kept") == "value"


async def test_concurrent_gets_share_one_load() -> None:
    cache: SingleFlightCache[str, str | None] = SingleFlightCache(60, 10)
    loader = Loader()
    loader.release.clear()
    waiters = [asyncio.ensure_future(cache.get("key", loader)) for _ in range(5)]
    # The load starts after every waiter has asked, so all five wait on it.
    await until(lambda: loader.calls == 1)
    loader.release.set()
    assert await asyncio.gather(*waiters) == ["value"] * 5
    assert loader.calls == 1
    # Kept afterwards: a later get does not load either.
    assert await cache.get("key", loader) == "value"
    assert loader.calls == 1


async def test_a_load_whose_only_waiter_is_cancelled_still_fills_the_cache() -> None:
    cache: SingleFlightCache[str, str | None] = SingleFlightCache(60, 10)
    loader = Loader()
    loader.release.clear()
    waiter = asyncio.ensure_future(cache.get("key", loader))
    await until(lambda: loader.calls == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    loader.release.set()
    await until(lambda: cache.cached("key") is not None)
    assert cache.cached("key") == "value"
    assert await cache.get("key", loader) == "value"
    assert loader.calls == 1


async def test_a_shorter_ttl_per_get_is_honoured() -> None:
    clock = ManualClock()
    cache: SingleFlightCache[str, str | None] = SingleFlightCache(60, 10, clock=clock)
    loader = Loader()
    assert await cache.get("short", loader, ttl_seconds=5) == "value"
    assert await cache.get("long", loader) == "value"
    assert loader.calls == 2
    clock.now += 4.9
    assert await cache.get("short", loader, ttl_seconds=5) == "value"
    assert loader.calls == 2
    clock.now += 0.2
    # Past the get's 5 s, within the cache's 60 s: "short" loads again, "long" is still kept.
    assert cache.cached("short") is None
    assert cache.cached("long") == "value"
    assert await cache.get("short", loader, ttl_seconds=5) == "value"
    assert loader.calls == 3


async def test_a_longer_ttl_per_get_is_capped_at_the_caches() -> None:
    clock = ManualClock()
    cache: SingleFlightCache[str, str | None] = SingleFlightCache(60, 10, clock=clock)
    loader = Loader()
    assert await cache.get("key", loader, ttl_seconds=600) == "value"
    clock.now += 60
    assert cache.cached("key") is None
