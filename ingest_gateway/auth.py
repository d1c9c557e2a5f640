"""Who is calling: HTTP Basic, ``Authorization: Token <key>`` or ``Authorization: Bearer <key>``.

Checking a password runs scrypt (about 0.1 s of CPU), so successful verifications are cached for
``settings.auth_cache_seconds`` under a SHA-256 of the header, never the secret itself. Cache misses
run in a worker thread so the event loop keeps serving, and concurrent misses for the same header
share one lookup. Failures are not cached: a fixed password or a new token works at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Final

from starlette.requests import Request

from eventpipe.identity import IdentityStore, User
from ingest_gateway.errors import ApiError
from ingest_gateway.ttl_cache import TtlCache

CHALLENGE: Final = {"WWW-Authenticate": 'Basic realm="eventpipe"'}


def unauthorized(error: str) -> ApiError:
    return ApiError(401, error, headers=CHALLENGE)


class Authenticator:
    def __init__(self, store: IdentityStore, cache_seconds: float) -> None:
        self._store = store
        self._verified: TtlCache[bytes, User] = TtlCache(cache_seconds)
        self._pending: dict[bytes, asyncio.Future[User | None]] = {}

    async def authenticate(self, authorization: str | None) -> User:
        """The user the ``Authorization`` header proves, or a 401 :class:`ApiError`."""
        if not authorization:
            raise unauthorized(
                "authentication required: send HTTP Basic credentials or "
                "'Authorization: Token <key>'"
            )
        cache_key = hashlib.sha256(authorization.encode()).digest()
        user = self._verified.get(cache_key)
        if user is None:
            user = await self._lookup_once(cache_key, self._lookup_for(authorization))
            if user is None:
                raise unauthorized("invalid credentials")
            self._verified.put(cache_key, user)
        return user

    def _lookup_for(self, authorization: str) -> Callable[[], User | None]:
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        match scheme.lower():
            case "basic":
                username, password = parse_basic(credentials)
                return lambda: self._store.verify_password(username, password)
            case "token" | "bearer" if credentials:
                return lambda: self._store.user_by_token(credentials)
            case "token" | "bearer":
                raise unauthorized(f"the {scheme} authorization header carries no token")
            case _:
                raise unauthorized(
                    f"unsupported authorization scheme {scheme!r}; use Basic, Token or Bearer"
                )

    async def _lookup_once(
        self, cache_key: bytes, lookup: Callable[[], User | None]
    ) -> User | None:
        pending = self._pending.get(cache_key)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(lookup))
            self._pending[cache_key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(cache_key, None))
        # Shielded: a client that disconnects must not cancel the lookup others wait for.
        return await asyncio.shield(pending)


def parse_basic(credentials: str) -> tuple[str, str]:
    """``(username, password)`` from the base64 part of a Basic header."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized(
            "malformed Basic credentials: expected base64 of 'user:password'"
        ) from None
    username, separator, password = decoded.partition(":")
    if not separator or not username:
        raise unauthorized("malformed Basic credentials: expected base64 of 'user:password'")
    return username, password


def authenticator_of(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


async def authenticate(request: Request) -> User:
    """The authenticated caller of ``request``; raises a 401 :class:`ApiError` otherwise."""
    return await authenticator_of(request).authenticate(request.headers.get("authorization"))
