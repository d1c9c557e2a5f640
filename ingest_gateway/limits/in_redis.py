"""The limits in Redis (:mod:`ingest_gateway.limits.redis_client`): every gateway process and
replica shares one state.

Tenant rate: a tenant gets its limit exactly once however many gateway processes and replicas
run. A bucket is a Redis hash (events left, when computed) updated by one Lua script: refill at the
tenant's rate by Redis's own clock (so replicas need not agree on time), refuse when empty,
otherwise take the request's events (the bucket may go into debt, as in process memory). That is
one round trip per accepted request, made once the body is decoded and its events counted.
A refusal is remembered in the process until the debt is paid, so further requests of that
tenant are refused before their body is read, with no round trip, as in process memory.
Buckets expire once they would be full again: an idle tenant costs Redis nothing.

Login throttle: a guesser gets the allowance once across every gateway process, not once per
process. Per (client, username), hashed into the key so that no username or address is stored as
it is: a failure counter that Redis forgets :data:`MAX_LOCKOUT_SECONDS` after the last failure,
and a lockout key whose own expiry is the lockout. Each check, failure or success is one round
trip. While Redis cannot be reached and the outage policy is ``open``, the pair is throttled by
this process's own :class:`LoginThrottle` instead, so an outage never leaves password guessing
unthrottled.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Final

from eventpipe.settings import LimitSettings
from ingest_gateway.errors import ApiError
from ingest_gateway.limits.in_memory import LoginThrottle
from ingest_gateway.limits.interface import (
    MAX_LOCKOUT_SECONDS,
    ClientKey,
    locked_out,
    rate_exhausted,
)
from ingest_gateway.limits.redis_client import RedisClient
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
        state: RedisClient,
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
        cls, settings: LimitSettings, state: RedisClient
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


# KEYS: failures, lockout. ARGV: free failures, first lockout (ms), longest lockout (ms).
_FAILED: Final = """
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local beyond = count - tonumber(ARGV[1])
if beyond >= 0 then
  local lockout = math.min(tonumber(ARGV[2]) * 2 ^ math.min(beyond, 32), tonumber(ARGV[3]))
  redis.call('SET', KEYS[2], '1', 'PX', math.max(math.floor(lockout), 1))
end
return count
"""


class RedisLoginThrottle:
    def __init__(self, state: RedisClient, free_failures: int, backoff_seconds: float) -> None:
        self._state = state
        self._free = free_failures
        self._backoff_ms = backoff_seconds * 1000
        self._failed_script = state.client.register_script(_FAILED)
        # Used only for the calls Redis cannot answer (RedisClient.call gives None for them).
        self._local = LoginThrottle(free_failures, backoff_seconds)

    async def check(self, key: ClientKey) -> None:
        """A 429 with ``Retry-After`` while ``key`` is locked out."""
        if self._free <= 0:
            return
        _, lockout = self._keys(key)
        left_ms = await self._state.call(lambda: self._state.client.pttl(lockout))
        if left_ms is None:
            await self._local.check(key)
        elif left_ms > 0:
            raise locked_out(math.ceil(left_ms / 1000))

    async def failed(self, key: ClientKey) -> None:
        if self._free <= 0:
            return
        count = await self._state.call(
            lambda: self._failed_script(
                keys=list(self._keys(key)),
                args=[self._free, self._backoff_ms, int(MAX_LOCKOUT_SECONDS * 1000)],
            )
        )
        if count is None:
            await self._local.failed(key)

    async def succeeded(self, key: ClientKey) -> None:
        if self._free > 0:
            await self._local.succeeded(key)
            await self._state.call(lambda: self._state.client.delete(*self._keys(key)))

    def _keys(self, key: ClientKey) -> tuple[bytes, bytes]:
        client, login = key
        digest = hashlib.sha256(f"{client}\0{login}".encode()).hexdigest().encode()
        base = self._state.key_prefix + b"login:" + digest
        return base + b":failures", base + b":lockout"
