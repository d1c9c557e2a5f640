"""The login throttle of :mod:`ingest_gateway.login_throttle`, kept in Redis so that a guesser
gets the allowance once across every gateway process, not once per process.

Per (client, username), hashed into the key so that no username or address is stored as it is: a
failure counter that Redis forgets :data:`MAX_LOCKOUT_SECONDS` after the last failure, and a
lockout key whose own expiry is the lockout. Each check, failure or success is one round trip.

While Redis cannot be reached and the outage policy is ``open``, the pair is throttled by this
process's own :class:`LoginThrottle` instead, so an outage never leaves password guessing
unthrottled.
"""

from __future__ import annotations

import hashlib
import math
from typing import Final

from ingest_gateway.login_throttle import (
    MAX_LOCKOUT_SECONDS,
    ClientKey,
    LoginThrottle,
    locked_out,
)
from ingest_gateway.redis_state import SharedState

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
    def __init__(self, state: SharedState, free_failures: int, backoff_seconds: float) -> None:
        self._state = state
        self._free = free_failures
        self._backoff_ms = backoff_seconds * 1000
        self._failed_script = state.client.register_script(_FAILED)
        # Used only for the calls Redis cannot answer (SharedState.call gives None for them).
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
