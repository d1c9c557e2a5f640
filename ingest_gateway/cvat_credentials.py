"""A caller's CVAT credentials, as CVAT's clients send them, ready to be forwarded to CVAT:
``Authorization: Token …`` (the SDK's and CLI's), ``Authorization: Bearer …`` (a CVAT access
token), ``Authorization: Basic …``, or the web UI's session: the ``sessionid`` cookie with the
``csrftoken`` cookie and, on requests that change something, the ``X-CSRFToken`` header.

The credential is only ever held for the request that carries it. What outlives the request is
its SHA-256 (the cache key) and the username of a Basic header (which the login throttle counts
against); its ``repr`` shows neither the headers nor the cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from dataclasses import dataclass, field
from typing import Final

from starlette.requests import Request

from ingest_gateway.errors import ApiError

SESSION_COOKIE: Final = "sessionid"
CSRF_COOKIE: Final = "csrftoken"
CSRF_HEADER: Final = "x-csrftoken"
# Methods Django lets through without a CSRF check; everything else needs the header.
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Django's CSRF alphabet and lengths: a secret of 32 characters, sent masked as 64.
_CSRF_CHARS: Final = string.ascii_letters + string.digits
_SECRET_LENGTH: Final = 32


@dataclass(frozen=True, slots=True)
class CvatCredential:
    # What is sent to CVAT on the caller's behalf.
    headers: dict[str, str] = field(repr=False)
    # SHA-256 of the credential: how its results are cached, never the credential itself.
    cache_key: bytes = field(repr=False)
    # Who failed logins count against: the username of a Basic header, else "".
    login: str = ""

    @property
    def is_access_token(self) -> bool:
        """A CVAT personal access token (``Authorization: Bearer``), which may do less."""
        scheme = self.headers.get("Authorization", "").partition(" ")[0]
        return scheme.lower() == "bearer"


def cvat_credential(request: Request) -> CvatCredential | None:
    """The request's credential for CVAT (its Authorization header, else its session); None when
    it carries none."""
    authorization = request.headers.get("authorization")
    if authorization:
        return header_credential(authorization)
    return session_credential(request)


def header_credential(authorization: str, login: str = "") -> CvatCredential:
    return CvatCredential(
        {"Authorization": authorization},
        hashlib.sha256(b"authorization\0" + authorization.encode()).digest(),
        login,
    )


def session_credential(request: Request) -> CvatCredential | None:
    """The web UI's session; None without a session cookie. A session without its CSRF header on
    a request that changes something is a 403, as CVAT answers it."""
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        return None
    csrf_cookie = request.cookies.get(CSRF_COOKIE, "")
    csrf_header = request.headers.get(CSRF_HEADER, "")
    if request.method not in _SAFE_METHODS:
        _check_csrf(csrf_cookie, csrf_header)
    headers = {"Cookie": f"{SESSION_COOKIE}={session}"}
    if csrf_cookie:
        headers["Cookie"] += f"; {CSRF_COOKIE}={csrf_cookie}"
    if csrf_header:
        headers["X-CSRFToken"] = csrf_header
    return CvatCredential(headers, hashlib.sha256(b"session\0" + session.encode()).digest())


def _check_csrf(cookie: str, header: str) -> None:
    """Django's double-submit check: the header's secret must be the cookie's. Either may be
    masked (64 characters) or plain (32)."""
    if not cookie:
        raise ApiError(403, "CSRF failed: the csrftoken cookie is missing", field=CSRF_COOKIE)
    if not header:
        raise ApiError(
            403, "CSRF failed: send the X-CSRFToken header with a session", field="X-CSRFToken"
        )
    expected, sent = _csrf_secret(cookie), _csrf_secret(header)
    if expected is None or sent is None or not hmac.compare_digest(expected, sent):
        raise ApiError(
            403, "CSRF failed: X-CSRFToken does not match the csrftoken cookie", field="X-CSRFToken"
        )


def _csrf_secret(token: str) -> str | None:
    if len(token) == _SECRET_LENGTH:
        return token if all(c in _CSRF_CHARS for c in token) else None
    if len(token) != 2 * _SECRET_LENGTH or not all(c in _CSRF_CHARS for c in token):
        return None
    mask, cipher = token[:_SECRET_LENGTH], token[_SECRET_LENGTH:]
    return "".join(
        _CSRF_CHARS[(_CSRF_CHARS.index(c) - _CSRF_CHARS.index(m)) % len(_CSRF_CHARS)]
        for m, c in zip(mask, cipher, strict=True)
    )
