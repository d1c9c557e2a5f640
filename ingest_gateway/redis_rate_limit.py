"""The tenant limiter of :mod:`ingest_gateway.rate_limit`, with its buckets in Redis so that a
tenant gets its limit exactly once however many gateway processes and replicas run.

A bucket is a Redis hash (events left, when computed) updated by one Lua script: refill at the
tenant's rate by Redis's own clock (so replicas need not agree on time), refuse when empty,
otherwise take the request's events (the bucket may go into debt, as in process memory). That is
one round trip per accepted request, made once the body is decoded and its events counted.

A refusal is remembered in the process until the debt is paid, so further requests of that
tenant are refused before their body is read, with no round trip, as in process memory.
Buckets expire once they would be full again: an idle tenant costs Redis nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final

from eventpipe.settings import LimitSettings
from ingest_gateway.errors import ApiError
from ingest_gateway.rate_limit import rate_exhausted
from ingest_gateway.redis_state import SharedState
from ingest_gateway.ttl_cache import TtlCache

# KEYS[1]: the bucket. ARGV: rate (events/s), burst, events to take.
# Returns {1, left} when taken, {0, left} when refused (left <= 0, nothing taken).
_TAKE: Final = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'left', 'at')
local left = tonumber(state[1])
if left == nil then
  left = burst
else
  left = math.min(burst, left + math.max(0, now - tonumber(state[2])) * rate)
end
local taken = 0
if left > 0 then
  left = left - tonumber(ARGV[3])
  taken = 1
end
redis.call('HSET', KEYS[1], 'left', tostring(left), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - left) / rate * 1000) + 1000)
return {taken, tostring(left)}
"""


class RedisTenantRateLimiter:
    def __init__(
        self,
        state: SharedState,
        events_per_second: float,
        burst_events: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._rate = events_per_second
        self._burst = max(float(burst_events), 1.0)
        self._script = state.client.register_script(_TAKE)
        # tenant -> when its known debt is paid; each entry lives until then.
        self._refused: TtlCache[bytes, float] = TtlCache(math.inf, max_entries=100_000, clock=clock)
        self._clock = clock

    @classmethod
    def from_settings(
        cls, settings: LimitSettings, state: SharedState
    ) -> RedisTenantRateLimiter | None:
        if settings.tenant_events_per_second <= 0:
            return None
        return cls(state, settings.tenant_events_per_second, settings.tenant_burst_events)

    def admit(self, tenant: bytes) -> None:
        """A 429 while this process knows the tenant's shared bucket to be empty."""
        until = self._refused.get(tenant)
        if until is not None:
            raise self._exhausted(until - self._clock())

    async def take(self, tenant: bytes, events: int) -> None:
        """Take the request's events from the shared bucket, or a 429 when it is empty."""
        answer = await self._state.call(
            lambda: self._script(
                keys=[self._state.key_prefix + b"tenant:" + tenant],
                args=[self._rate, self._burst, events],
            )
        )
        if answer is None:  # Redis is out and the policy is to admit
            return
        taken, left = int(answer[0]), float(answer[1])
        if not taken:
            wait = -left / self._rate
            self._refused.put(tenant, self._clock() + wait, wait)
            raise self._exhausted(wait)

    def _exhausted(self, wait: float) -> ApiError:
        return rate_exhausted(f"{self._rate:g} events/s", wait)
