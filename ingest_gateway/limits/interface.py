"""The limits' interface: what the gateway asks of a tenant rate limiter and of a login
throttle, and the answers they refuse with, whichever backend keeps their state.

Two backends implement it: :mod:`ingest_gateway.limits.in_memory` (each gateway process on its
own) and :mod:`ingest_gateway.limits.in_redis` (every process and replica sharing one Redis).
"""

from __future__ import annotations

import math
from typing import Final, Protocol

from starlette.requests import Request

from ingest_gateway.errors import ApiError

# The longest lockout, and how long a pair's failures are remembered after the last one.
MAX_LOCKOUT_SECONDS: Final = 900.0

# (client address, username): the pair a login throttle counts failures for.
ClientKey = tuple[str, str]


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
