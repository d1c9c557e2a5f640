"""Events per second per tenant (an organization, or a user's personal sandbox), with a burst.

One token bucket per tenant, in process memory: a bucket holds up to ``burst`` events and refills
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
from the same one (:mod:`ingest_gateway.redis_rate_limit`). See docs/security.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Protocol

from starlette.requests import Request

from eventpipe.settings import LimitSettings
from ingest_gateway.errors import ApiError


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

        Asynchronous for the shared limiter (:mod:`ingest_gateway.redis_rate_limit`), whose
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


def rate_exhausted(limit: str, wait_seconds: float) -> ApiError:
    """The 429 of a tenant over ``limit``, to retry after ``wait_seconds`` (at least 1 s)."""
    seconds = max(math.ceil(wait_seconds), 1)
    return ApiError(
        429,
        f"this tenant's event rate limit ({limit}) is exhausted; retry in {seconds} s",
        field="events",
        headers={"Retry-After": str(seconds)},
    )


class TenantLimiter(Protocol):
    """What the events endpoint needs of a limiter, in process memory or in Redis."""

    def admit(self, tenant: bytes) -> None: ...

    async def take(self, tenant: bytes, events: int) -> None: ...


def tenant_limiter_of(request: Request) -> TenantLimiter | None:
    limiter: TenantLimiter | None = request.app.state.tenant_limiter
    return limiter
