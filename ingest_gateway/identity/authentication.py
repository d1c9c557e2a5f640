"""Who is calling: HTTP Basic, ``Authorization: Token <key>`` or ``Authorization: Bearer <key>``,
where a Bearer credential is a JWT (:mod:`ingest_gateway.identity.jwt_tokens`, when configured)
or else an API token. With ``cvat_url`` every credential but a JWT, and the web UI's session
cookie, is checked by CVAT instead of the local store
(:mod:`ingest_gateway.identity.cvat_provider`).

Checking a password runs scrypt (about 0.1 s of CPU), so successful verifications are cached for
``settings.auth_cache_seconds`` under a SHA-256 of the header, never the secret itself. API tokens
are cached for at most ``settings.token_cache_seconds``, which bounds how long a revoked token keeps
working. Cache misses run in a worker thread so the event loop keeps serving, and concurrent misses
for the same header share one lookup. Failures are not cached: a fixed password or a new token
works at once.

Failed checks count against the client address and username (:mod:`ingest_gateway.limits`):
past the allowance the pair gets 429 with ``Retry-After`` before any hash is computed. JWT
failures are not counted: signatures cannot be guessed, and a client retrying with an expired token
must not be locked out once it has a fresh one. A verified JWT is cached until it expires, at most
``settings.auth_cache_seconds``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request

from eventpipe.identity import IdentityStore, User
from eventpipe.settings import Settings
from ingest_gateway.errors import unauthorized
from ingest_gateway.identity.cvat_credentials import (
    CvatCredential,
    header_credential,
    session_credential,
)
from ingest_gateway.identity.cvat_provider import CvatIdentityProvider
from ingest_gateway.identity.jwt_tokens import InvalidJwtError, JwtVerifier, looks_like_jwt
from ingest_gateway.limits.in_memory import LoginThrottle
from ingest_gateway.limits.interface import Throttle
from ingest_gateway.single_flight import SingleFlightCache

# Verified credentials kept at once per gateway process (EVENTPIPE_CVAT_CACHE_ENTRIES with CVAT).
MAX_CACHED_CREDENTIALS: Final = 10_000


@dataclass(frozen=True, slots=True)
class _Credential:
    """How to check one Authorization header, and how long a success may be cached."""

    # Store lookups run in a worker thread; CVAT is asked over HTTP.
    lookup: Callable[[], Awaitable[User | None]]
    # Who the failures of this header count against: the username, "" for API tokens.
    login: str
    cache_seconds: float | None = None  # None: the cache's own time (passwords)


def _asking_cvat(cvat: CvatIdentityProvider, credential: CvatCredential) -> _Credential:
    return _Credential(lambda: cvat.user(credential), credential.login, cvat.cache_seconds)


class Authenticator:
    def __init__(
        self,
        store: IdentityStore,
        cache_seconds: float,
        *,
        token_cache_seconds: float = 5.0,
        throttle: Throttle | None = None,
        jwt_verifier: JwtVerifier | None = None,
        cvat: CvatIdentityProvider | None = None,
        max_entries: int = MAX_CACHED_CREDENTIALS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._jwt = jwt_verifier
        self._cvat = cvat
        self._token_cache_seconds = token_cache_seconds
        self._throttle = throttle or LoginThrottle(free_failures=0, backoff_seconds=0)
        # Concurrent checks of one header share one lookup; only users found are kept.
        self._users: SingleFlightCache[bytes, User | None] = SingleFlightCache(
            cache_seconds, max_entries, clock
        )

    @classmethod
    def from_settings(
        cls,
        store: IdentityStore,
        settings: Settings,
        throttle: Throttle,
        cvat: CvatIdentityProvider | None,
    ) -> Authenticator:
        return cls(
            store,
            settings.auth_cache_seconds,
            token_cache_seconds=settings.token_cache_seconds,
            throttle=throttle,
            jwt_verifier=JwtVerifier.from_settings(settings),
            cvat=cvat,
            max_entries=MAX_CACHED_CREDENTIALS if cvat is None else settings.cvat_cache_entries,
        )

    async def authenticate(
        self, authorization: str | None, client: str = "", session: CvatCredential | None = None
    ) -> User:
        """The user the ``Authorization`` header (or, with CVAT, the web UI's ``session``) sent
        from address ``client`` proves, a 401 :class:`ApiError`, or a 429 while that client's
        failures for that login lock it out."""
        if authorization:
            cache_key = hashlib.sha256(authorization.encode()).digest()
        elif session is not None and self._cvat is not None:
            cache_key = session.cache_key
        else:
            raise unauthorized(
                "authentication required: send HTTP Basic credentials or "
                "'Authorization: Token <key>'"
            )
        user = self._users.cached(cache_key)
        if user is None:
            if authorization:
                scheme, _, credentials = authorization.strip().partition(" ")
                credentials = credentials.strip()
                if (
                    self._jwt is not None
                    and scheme.lower() == "bearer"
                    and looks_like_jwt(credentials)
                ):
                    return self._accept_jwt(self._jwt, cache_key, credentials)
                credential = self._credential_for(scheme, credentials, authorization)
            else:
                assert session is not None and self._cvat is not None
                credential = _asking_cvat(self._cvat, session)
            throttle_key = (client, credential.login)
            await self._throttle.check(throttle_key)
            user = await self._users.get(cache_key, credential.lookup, credential.cache_seconds)
            if user is None:
                await self._throttle.failed(throttle_key)
                raise unauthorized("invalid credentials")
            await self._throttle.succeeded(throttle_key)
        return user

    def _accept_jwt(self, verifier: JwtVerifier, cache_key: bytes, token: str) -> User:
        try:
            user, valid_seconds = verifier.verify(token)
        except InvalidJwtError as exc:
            raise unauthorized(str(exc)) from None
        self._users.put(cache_key, user, valid_seconds)
        return user

    def _credential_for(self, scheme: str, credentials: str, authorization: str) -> _Credential:
        match scheme.lower():
            case "basic":
                username, password = parse_basic(credentials)
                if self._cvat is not None:
                    return _asking_cvat(self._cvat, header_credential(authorization, username))
                return _Credential(
                    lambda: asyncio.to_thread(self._store.verify_password, username, password),
                    username,
                )
            case "token" | "bearer" if credentials:
                if self._cvat is not None:
                    return _asking_cvat(self._cvat, header_credential(authorization))
                return _Credential(
                    lambda: asyncio.to_thread(self._store.user_by_token, credentials),
                    "",
                    self._token_cache_seconds,
                )
            case "token" | "bearer":
                raise unauthorized(f"the {scheme} authorization header carries no token")
            case _:
                raise unauthorized(
                    f"unsupported authorization scheme {scheme!r}; use Basic, Token or Bearer"
                )


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
    client = request.client.host if request.client else ""
    authorization = request.headers.get("authorization")
    # The web UI's session cookie is CVAT's to check, so it is looked at only when CVAT is.
    session = (
        session_credential(request)
        if not authorization and request.app.state.cvat is not None
        else None
    )
    return await authenticator_of(request).authenticate(authorization, client, session)
