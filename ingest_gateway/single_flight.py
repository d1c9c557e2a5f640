"""A cache of asynchronous lookups: concurrent misses for one key share one lookup, results are
kept for a time, failures and None results are not (the next request asks again).

The lookup runs to its end even when every caller waiting for it is cancelled (a client that
disconnects), so its result still serves the next request."""

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

    def cached(self, key: K) -> V | None:
        """The kept result for ``key``, without looking it up."""
        return self._done.get(key)

    def put(self, key: K, value: V, ttl_seconds: float | None = None) -> None:
        """Keep a result obtained without a lookup (see :meth:`TtlCache.put` for the time)."""
        self._done.put(key, value, ttl_seconds)

    async def get(
        self, key: K, load: Callable[[], Awaitable[V]], ttl_seconds: float | None = None
    ) -> V:
        """The kept result, or the one ``load`` (or a lookup already running for ``key``) gives,
        kept for the cache's time or ``ttl_seconds`` if that is shorter."""
        value = self._done.get(key)
        if value is not None:
            return value
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(load())
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done, ttl_seconds))
        # Shielded: a client that disconnects must not cancel the lookup others wait for.
        return await asyncio.shield(pending)

    def _settle(self, key: K, done: asyncio.Future[V], ttl_seconds: float | None) -> None:
        self._pending.pop(key, None)
        if not done.cancelled() and done.exception() is None and done.result() is not None:
            self._done.put(key, done.result(), ttl_seconds)
