"""A caller's CVAT credentials, as CVAT's clients send them, ready to be forwarded to CVAT:
``Authorization: Token …`` (the SDK's and CLI's), ``Authorization: Bearer …`` (a CVAT access
token), ``Authorization: Basic …``, or the web UI's session: the ``sessionid`` cookie with the
``csrftoken`` cookie and, on requests that change something, the ``X-CSRFToken`` header and
Django's origin checks.

The credential is only ever held for the request that carries it. What outlives the request is
its SHA-256 (the cache key) and the username of a Basic header (which the login throttle counts
against); its ``repr`` shows neither the headers nor the cookies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from starlette.requests import Request

from ingest_gateway.identity.csrf import CSRF_COOKIE, CSRF_HEADER, TrustedOrigins, check_csrf

SESSION_COOKIE: Final = "sessionid"


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


# Where session_credential keeps the request's session credential.
_SESSION_STATE: Final = "cvat_session_credential"


def session_credential(request: Request) -> CvatCredential | None:
    """The web UI's session; None without a session cookie. A session failing Django's CSRF
    check on a request that changes something is a 403, as CVAT answers it
    (:mod:`ingest_gateway.identity.csrf`).

    Built once per request: authentication and the organization context both ask for it.
    """
    if hasattr(request.state, _SESSION_STATE):
        known: CvatCredential | None = getattr(request.state, _SESSION_STATE)
        return known
    credential = _session_credential(request)
    setattr(request.state, _SESSION_STATE, credential)
    return credential


def _session_credential(request: Request) -> CvatCredential | None:
    session = request.cookies.get(SESSION_COOKIE)
    if not session:
        return None
    csrf_cookie = request.cookies.get(CSRF_COOKIE, "")
    csrf_header = request.headers.get(CSRF_HEADER, "")
    trusted: TrustedOrigins = request.app.state.trusted_origins
    check_csrf(request, trusted)
    headers = {"Cookie": f"{SESSION_COOKIE}={session}"}
    if csrf_cookie:
        headers["Cookie"] += f"; {CSRF_COOKIE}={csrf_cookie}"
    if csrf_header:
        headers["X-CSRFToken"] = csrf_header
    return CvatCredential(headers, hashlib.sha256(b"session\0" + session.encode()).digest())
