"""Slow down password and token guessing: per client and username, failed logins past a free
allowance lock that pair out for a time that doubles with every further failure.

The key is (client address, username) so that one client guessing cannot lock a user out for
everyone else, and one user's typo on one machine does not lock their other machines. This one
keeps its state per gateway process: with N processes a guesser gets at most N times the
allowance, still a few guesses per doubling lockout instead of thousands per second. With
``rate_limit_redis_url`` the gateways share one (:mod:`ingest_gateway.redis_login_throttle`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Final, Protocol

from ingest_gateway.errors import ApiError

# The longest lockout, and how long a pair's failures are remembered after the last one.
MAX_LOCKOUT_SECONDS: Final = 900.0

ClientKey = tuple[str, str]


@dataclass(slots=True)
class _Failures:
    count: int
    last_failure: float
    locked_until: float


@dataclass(eq=False)
class LoginThrottle:
    """Each pair's failures in this process's memory, at most ``max_clients`` pairs."""

    free_failures: int
    backoff_seconds: float
    _: KW_ONLY
    clock: Callable[[], float] = time.monotonic
    max_clients: int = 100_000
    # Least recently failed first.
    _failures: OrderedDict[ClientKey, _Failures] = field(default_factory=OrderedDict, init=False)

    # Asynchronous for the shared throttle (ingest_gateway.redis_login_throttle); these never wait.
    async def check(self, key: ClientKey) -> None:
        """A 429 :class:`ApiError` with ``Retry-After`` while ``key`` is locked out."""
        failures = self._failures.get(key)
        if failures is None:
            return
        wait = failures.locked_until - self.clock()
        if wait > 0:
            seconds = math.ceil(wait)
            raise locked_out(seconds)

    async def failed(self, key: ClientKey) -> None:
        if self.free_failures <= 0:
            return
        now = self.clock()
        failures = self._failures.pop(key, None)
        if failures is None or now - failures.last_failure > MAX_LOCKOUT_SECONDS:
            failures = _Failures(0, now, now)
        failures.count += 1
        failures.last_failure = now
        beyond = failures.count - self.free_failures
        if beyond >= 0:
            lockout = min(self.backoff_seconds * 2 ** min(beyond, 32), MAX_LOCKOUT_SECONDS)
            failures.locked_until = now + lockout
        self._failures[key] = failures
        # Oldest first: a flood of made-up usernames pushes out only stale entries.
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    async def succeeded(self, key: ClientKey) -> None:
        self._failures.pop(key, None)


def locked_out(seconds: int) -> ApiError:
    return ApiError(
        429,
        f"too many failed logins from this client; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


class Throttle(Protocol):
    """What the authenticator needs of a throttle, in process memory or in Redis."""

    async def check(self, key: ClientKey) -> None: ...

    async def failed(self, key: ClientKey) -> None: ...

    async def succeeded(self, key: ClientKey) -> None: ...
