"""The limits in process memory: each gateway process keeps its own state.

Tenant rate: events per second per tenant (an organization, or a user's personal sandbox), with
a burst. One token bucket per tenant: a bucket holds up to ``burst`` events and refills
at ``events_per_second``. A request is admitted while its tenant's bucket is not empty, before its
body is decoded, so a refusal costs no decoding, enrichment or Kafka round trip: about a fifth of
the CPU of an accepted request, most of it the socket work of a body the client sends anyway
(docs/benchmarks.md). Once decoded, the request's events are taken from the bucket, which may go
negative: the tenant then waits until the debt is paid, so the long-run rate holds even for
requests larger than what is left.

Without a shared store each gateway process enforces ``1 / processes`` of the rate and of the burst
(``settings.gateway_processes``). With connections spread evenly over processes a tenant gets its
whole limit; a tenant that keeps one connection to one process gets only that process's share, never
more than the limit. With ``rate_limit_redis_url`` the buckets live in Redis and every process takes
from the same one (:mod:`ingest_gateway.limits.in_redis`). See docs/security.md.

Login throttle: slow down password and token guessing. Per client and username, failed logins
past a free allowance lock that pair out for a time that doubles with every further failure.
The key is (client address, username) so that one client guessing cannot lock a user out for
everyone else, and one user's typo on one machine does not lock their other machines. Kept per
gateway process, a guesser gets at most N times the allowance with N processes, still a few
guesses per doubling lockout instead of thousands per second.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import KW_ONLY, dataclass, field

from eventpipe.settings import LimitSettings
from ingest_gateway.limits.interface import (
    MAX_LOCKOUT_SECONDS,
    ClientKey,
    locked_out,
    rate_exhausted,
)


class TenantRateLimiter:
    def __init__(
        self,
        events_per_second: float,
        burst_events: int,
        *,
        processes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        max_tenants: int = 100_000,
    ) -> None:
        self._rate = events_per_second / max(processes, 1)
        self._burst = max(burst_events / max(processes, 1), 1.0)
        self._clock = clock
        self._max_tenants = max_tenants
        # tenant -> [events left, when that was computed]; a list so it is updated in place.
        self._buckets: dict[Hashable, list[float]] = {}

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> TenantRateLimiter | None:
        """The limiter the settings configure, None when the rate is 0 (unlimited)."""
        if settings.tenant_events_per_second <= 0:
            return None
        return cls(
            settings.tenant_events_per_second,
            settings.tenant_burst_events,
            processes=settings.gateway_processes,
        )

    def admit(self, tenant: Hashable) -> None:
        """A 429 :class:`ApiError` with ``Retry-After`` while the tenant's bucket is empty."""
        left = self._refill(tenant)
        if left <= 0:
            raise rate_exhausted(f"{self._rate:g} events/s per gateway process", -left / self._rate)

    async def take(self, tenant: Hashable, events: int) -> None:
        """Take a decoded request's events from the tenant's bucket (it may go negative).

        Asynchronous for the shared limiter (:mod:`ingest_gateway.limits.in_redis`), whose
        bucket lives in Redis; this one never waits."""
        self._refill(tenant)
        self._buckets[tenant][0] -= events

    def _refill(self, tenant: Hashable) -> float:
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            if len(self._buckets) >= self._max_tenants:
                self._forget_full_buckets(now)
            bucket = self._buckets[tenant] = [self._burst, now]
        else:
            bucket[0] = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
            bucket[1] = now
        return bucket[0]

    def _forget_full_buckets(self, now: float) -> None:
        # A bucket that has refilled completely holds nothing a new bucket would not.
        self._buckets = {
            tenant: bucket
            for tenant, bucket in self._buckets.items()
            if bucket[0] + (now - bucket[1]) * self._rate < self._burst
        }


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

    # Asynchronous for the shared throttle (ingest_gateway.limits.in_redis); these never wait.
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
