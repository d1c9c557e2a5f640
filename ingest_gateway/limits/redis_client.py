"""The Redis that holds limits shared by every gateway process (``rate_limit_redis_url``), and
what a request gets while it cannot be reached (``rate_limit_redis_failure``).

Every call is bounded by ``rate_limit_redis_timeout_seconds``. After a failed call Redis is not
asked again for :data:`PAUSE_SECONDS`, so during an outage requests do not each wait for a
timeout; then ``open`` admits them without a shared limit and ``closed`` answers 503 with
``Retry-After``. Outages are logged once each and counted in
``eventpipe_redis_failures_total``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Final, TypeVar

import redis.asyncio as redis
from prometheus_client import Counter
from redis.exceptions import RedisError

from eventpipe.settings import SharedStateSettings
from ingest_gateway.errors import unavailable

T = TypeVar("T")

PAUSE_SECONDS: Final = 1.0

log = logging.getLogger(__name__)

REDIS_FAILURES = Counter(
    "eventpipe_redis_failures",
    "Calls to the Redis of the shared limits that failed or were skipped during an outage",
)


@dataclass(eq=False)
class RedisClient:
    """A Redis client with the deployment's outage policy."""

    client: redis.Redis
    _: KW_ONLY
    fail_open: bool
    # Every key this deployment's limits use starts with it (rate_limit_redis_prefix).
    key_prefix: bytes
    clock: Callable[[], float] = time.monotonic
    # Until when Redis is not asked after a failed call; 0 while it answers.
    _paused_until: float = field(default=0.0, init=False)

    @classmethod
    def from_settings(cls, settings: SharedStateSettings) -> RedisClient | None:
        """None when ``rate_limit_redis_url`` is empty: limits stay in process memory."""
        if not settings.rate_limit_redis_url:
            return None
        timeout = settings.rate_limit_redis_timeout_seconds
        client = redis.Redis.from_url(
            settings.rate_limit_redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # The outage policy decides; the client's own retries would only stretch the wait.
            retry_on_timeout=False,
            retry=None,
        )
        return cls(
            client,
            fail_open=settings.rate_limit_redis_failure == "open",
            key_prefix=settings.rate_limit_redis_prefix.encode(),
        )

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T | None:
        """``operation``'s result; None while Redis is out and the policy is ``open``; a 503
        :class:`ApiError` while it is out and the policy is ``closed``."""
        if self.clock() >= self._paused_until:
            try:
                result = await operation()
            except (RedisError, OSError) as exc:
                if self._paused_until == 0.0:
                    log.warning(
                        "the Redis of the shared limits cannot be reached (%s); requests are %s",
                        type(exc).__name__,
                        "admitted without shared limits" if self.fail_open else "refused",
                    )
                self._paused_until = self.clock() + PAUSE_SECONDS
            else:
                if self._paused_until:
                    log.warning("the Redis of the shared limits answers again")
                self._paused_until = 0.0
                return result
        REDIS_FAILURES.inc()
        if self.fail_open:
            return None
        raise unavailable(
            "the shared rate limits cannot be checked now; retry later", math.ceil(PAUSE_SECONDS)
        )

    async def close(self) -> None:
        await self.client.aclose()
