"""A cache of asynchronous lookups: concurrent misses for one key share one lookup, results are
kept for a time, failures and None results are not (the next request asks again)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ingest_gateway.ttl_cache import TtlCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlightCache(Generic[K, V]):
    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._done: TtlCache[K, V] = TtlCache(ttl_seconds, max_entries, clock)
        self._pending: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        value = self._done.get(key)
        if value is not None:
            return value
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(load())
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done))
        # Shielded: a client that disconnects must not cancel the lookup others wait for.
        return await asyncio.shield(pending)

    def _settle(self, key: K, done: asyncio.Future[V]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled() and done.exception() is None and done.result() is not None:
            self._done.put(key, done.result())
