"""Django's CSRF check of a web UI session, as CVAT's server (Django 5.2) makes it on every
request that changes something; Token, Basic and access-token callers are never checked, as in
Django REST framework.

In Django's order, each failure a 403 naming what failed:

1. an ``Origin`` header, when sent, must be the request's own origin (its scheme and host, the
   ``X-Forwarded-*`` headers of CVAT's proxy taken into account, as CVAT's settings do) or one of
   the trusted origins (``EVENTPIPE_CVAT_CSRF_TRUSTED_ORIGINS``, CVAT's ``CSRF_TRUSTED_ORIGINS``:
   exact, or ``https://*.example.com`` for every subdomain);
2. without ``Origin``, an HTTPS request's ``Referer`` must be an HTTPS address on the request's
   own host or a trusted origin's host;
3. the ``X-CSRFToken`` header must carry the secret of the ``csrftoken`` cookie (either may be
   masked, 64 characters, or plain, 32).
"""

from __future__ import annotations

import hmac
import string
from dataclasses import dataclass
from typing import Final, NoReturn
from urllib.parse import urlsplit

from starlette.requests import Request

from eventpipe.settings import CvatSettings, SettingsError
from ingest_gateway.errors import ApiError

CSRF_COOKIE: Final = "csrftoken"
CSRF_HEADER: Final = "x-csrftoken"
# Methods Django lets through without a CSRF check.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Django's CSRF alphabet and lengths: a secret of 32 characters, sent masked as 64.
_CSRF_CHARS: Final = string.ascii_letters + string.digits
_SECRET_LENGTH: Final = 32


@dataclass(frozen=True)
class TrustedOrigins:
    """Django's ``CSRF_TRUSTED_ORIGINS``, split as its CSRF middleware splits them."""

    exact: frozenset[str] = frozenset()
    # scheme -> domain suffixes (".example.com") of the wildcard origins.
    subdomains: tuple[tuple[str, str], ...] = ()
    # Every trusted origin's host (a wildcard's as ".example.com"), for the Referer check.
    hosts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> TrustedOrigins:
        origins = [origin.strip() for origin in raw.split(",") if origin.strip()]
        for origin in origins:
            parts = urlsplit(origin)
            if not parts.scheme or not parts.netloc:
                raise SettingsError(
                    f"EVENTPIPE_CVAT_CSRF_TRUSTED_ORIGINS: {origin!r} is no origin; write "
                    "scheme://host[:port], as Django's CSRF_TRUSTED_ORIGINS takes it"
                )
        return cls(
            exact=frozenset(origin for origin in origins if "*" not in origin),
            subdomains=tuple(
                (urlsplit(origin).scheme, urlsplit(origin).netloc.partition("*")[2])
                for origin in origins
                if "*" in origin
            ),
            hosts=tuple(urlsplit(origin).netloc.lstrip("*") for origin in origins),
        )

    @classmethod
    def from_settings(cls, settings: CvatSettings) -> TrustedOrigins:
        return cls.parse(settings.cvat_csrf_trusted_origins)


def check_csrf(request: Request, trusted: TrustedOrigins) -> None:
    """A 403 unless ``request``, made with a session, passes Django's CSRF check."""
    if request.method in SAFE_METHODS:
        return
    secure = _scheme(request) == "https"
    origin = request.headers.get("origin")
    if origin is not None:
        if not _origin_verified(origin, request, secure, trusted):
            _refuse(
                f"Origin checking failed - {origin} does not match any trusted origins.", "Origin"
            )
    elif secure:
        _check_referer(request, trusted)
    _check_token(request.cookies.get(CSRF_COOKIE, ""), request.headers.get(CSRF_HEADER, ""))


def _scheme(request: Request) -> str:
    # CVAT's SECURE_PROXY_SSL_HEADER: its proxy says the request came over HTTPS.
    if request.headers.get("x-forwarded-proto") == "https":
        return "https"
    return request.url.scheme


def _host(request: Request) -> str:
    # CVAT's USE_X_FORWARDED_HOST: the proxy's X-Forwarded-Host wins over Host.
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded:
        return forwarded.split(",")[-1].strip()
    return request.headers.get("host", "")


def _origin_verified(origin: str, request: Request, secure: bool, trusted: TrustedOrigins) -> bool:
    if origin == f"{'https' if secure else 'http'}://{_host(request)}" or origin in trusted.exact:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return any(
        scheme == parts.scheme and _same_domain(parts.netloc, suffix)
        for scheme, suffix in trusted.subdomains
    )


def _check_referer(request: Request, trusted: TrustedOrigins) -> None:
    raw = request.headers.get("referer")
    if raw is None:
        _refuse("Referer checking failed - no Referer.", "Referer")
    try:
        referer = urlsplit(raw)
    except ValueError:
        referer = urlsplit("")
    if not referer.scheme or not referer.netloc:
        _refuse("Referer checking failed - Referer is malformed.", "Referer")
    if referer.scheme != "https":
        _refuse("Referer checking failed - Referer is insecure while host is secure.", "Referer")
    if any(_same_domain(referer.netloc, host) for host in (*trusted.hosts, _host(request))):
        return
    _refuse(f"Referer checking failed - {raw} does not match any trusted origins.", "Referer")


def _same_domain(host: str, pattern: str) -> bool:
    """Django's ``is_same_domain``: ``pattern`` itself, or below it when it starts with '.'."""
    host, pattern = host.lower(), pattern.lower()
    if not pattern:
        return False
    return host == pattern or (
        pattern[0] == "." and (host.endswith(pattern) or host == pattern[1:])
    )


def _check_token(cookie: str, header: str) -> None:
    """Django's double-submit check: the header's secret must be the cookie's."""
    if not cookie:
        _refuse("the csrftoken cookie is missing", CSRF_COOKIE)
    if not header:
        _refuse("send the X-CSRFToken header with a session", "X-CSRFToken")
    expected, sent = _csrf_secret(cookie), _csrf_secret(header)
    if expected is None or sent is None or not hmac.compare_digest(expected, sent):
        _refuse("X-CSRFToken does not match the csrftoken cookie", "X-CSRFToken")


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


def _refuse(reason: str, field: str) -> NoReturn:
    raise ApiError(403, f"CSRF failed: {reason}", field=field)
