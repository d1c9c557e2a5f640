"""Slow down password and token guessing: per client and username, failed logins past a free
allowance lock that pair out for a time that doubles with every further failure.

The key is (client address, username) so that one client guessing cannot lock a user out for
everyone else, and one user's typo on one machine does not lock their other machines. The state is
per gateway process; with N processes a guesser gets at most N times the allowance, still a few
guesses per doubling lockout instead of thousands per second.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
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


class LoginThrottle:
    def __init__(
        self,
        free_failures: int,
        backoff_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self._free = free_failures
        self._backoff = backoff_seconds
        self._clock = clock
        self._max = max_clients
        self._failures: OrderedDict[ClientKey, _Failures] = OrderedDict()

    # Asynchronous for the shared throttle (ingest_gateway.redis_login_throttle); these never wait.
    async def check(self, key: ClientKey) -> None:
        """A 429 :class:`ApiError` with ``Retry-After`` while ``key`` is locked out."""
        failures = self._failures.get(key)
        if failures is None:
            return
        wait = failures.locked_until - self._clock()
        if wait > 0:
            seconds = math.ceil(wait)
            raise locked_out(seconds)

    async def failed(self, key: ClientKey) -> None:
        if self._free <= 0:
            return
        now = self._clock()
        failures = self._failures.pop(key, None)
        if failures is None or now - failures.last_failure > MAX_LOCKOUT_SECONDS:
            failures = _Failures(0, now, now)
        failures.count += 1
        failures.last_failure = now
        beyond = failures.count - self._free
        if beyond >= 0:
            lockout = min(self._backoff * 2 ** min(beyond, 32), MAX_LOCKOUT_SECONDS)
            failures.locked_until = now + lockout
        self._failures[key] = failures
        # Oldest first: a flood of made-up usernames pushes out only stale entries.
        while len(self._failures) > self._max:
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
