"""Which CVAT credential a request carries, and Django 5.2's CSRF check of the web UI's session
(its origin, referer and token checks, in its order and with its outcomes)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from ingest_gateway.errors import ApiError
from ingest_gateway.identity.csrf import TrustedOrigins
from ingest_gateway.identity.cvat_credentials import cvat_credential

SECRET = "abcdefghijklmnopqrstuvwxyzABCDEF"
# SECRET masked with the mask "bbbb...": each character moved one place on in Django's alphabet.
MASKED = "b" * 32 + "bcdefghijklmnopqrstuvwxyzABCDEFG"


TRUSTED = "https://cvat.example.com, https://*.corp.example"


def request(
    method: str = "POST", headers: dict[str, str] | None = None, scheme: str = "http"
) -> Request:
    app = Starlette()
    app.state.trusted_origins = TrustedOrigins.parse(TRUSTED)
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request(
        {
            "type": "http",
            "method": method,
            "scheme": scheme,
            "server": ("gateway", 8080),
            "path": "/api/events",
            "headers": raw,
            "query_string": b"",
            "app": app,
        }
    )


def session(csrf_cookie: str | None = SECRET, **headers: str) -> dict[str, str]:
    cookie = "sessionid=s3ss10n" + ("" if csrf_cookie is None else f"; csrftoken={csrf_cookie}")
    return {"Cookie": cookie, **headers}


def test_an_authorization_header_is_forwarded_as_it_is_and_keyed_by_a_hash() -> None:
    credential = cvat_credential(request(headers={"Authorization": "Token abc"}))
    assert credential is not None
    assert credential.headers == {"Authorization": "Token abc"}
    assert b"abc" not in credential.cache_key and len(credential.cache_key) == 32
    assert "abc" not in repr(credential)


@pytest.mark.parametrize("sent", [SECRET, MASKED])
def test_a_session_passes_with_the_plain_or_masked_csrf_token(sent: str) -> None:
    credential = cvat_credential(request(headers=session(**{"X-CSRFToken": sent})))
    assert credential is not None
    assert credential.headers["Cookie"] == f"sessionid=s3ss10n; csrftoken={SECRET}"
    assert "s3ss10n" not in repr(credential)


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        (session(), "X-CSRFToken"),
        (session(**{"X-CSRFToken": "b" * 64}), "X-CSRFToken"),
        (session(**{"X-CSRFToken": SECRET[:-1] + "!"}), "X-CSRFToken"),
        (session(csrf_cookie=None, **{"X-CSRFToken": SECRET}), "csrftoken"),
    ],
)
def test_a_session_post_without_a_matching_csrf_token_is_403(
    headers: dict[str, str], field: str
) -> None:
    with pytest.raises(ApiError) as refused:
        cvat_credential(request(headers=headers))
    assert (refused.value.status, refused.value.field) == (403, field)


def test_reading_needs_no_csrf_token_and_no_credential_is_none() -> None:
    assert cvat_credential(request("GET", session(csrf_cookie=None))) is not None
    assert cvat_credential(request()) is None


GOOD = {"X-CSRFToken": SECRET, "Host": "gateway:8080"}


@pytest.mark.parametrize(
    ("extra", "scheme", "refused"),
    [
        # The request's own origin, and trusted ones (exact, or any subdomain of a wildcard).
        ({"Origin": "http://gateway:8080"}, "http", None),
        ({"Origin": "https://cvat.example.com"}, "http", None),
        ({"Origin": "https://a.corp.example"}, "http", None),
        ({"Origin": "https://corp.example"}, "http", None),
        ({"Origin": "http://a.corp.example"}, "http", "Origin"),  # another scheme
        ({"Origin": "https://evil.example"}, "http", "Origin"),
        ({"Origin": "null"}, "http", "Origin"),
        # Behind CVAT's proxy: its X-Forwarded-Proto and X-Forwarded-Host make the own origin.
        ({"Origin": "http://gateway:8080", "X-Forwarded-Proto": "https"}, "http", "Origin"),
        (
            {
                "Origin": "https://ui.example",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "ui.example",
            },
            "http",
            None,
        ),
        # Without Origin, HTTPS needs a secure Referer of this host or a trusted one.
        ({}, "https", "Referer"),
        ({"Referer": "https://gateway:8080/tasks/1"}, "https", None),
        ({"Referer": "https://cvat.example.com/tasks"}, "https", None),
        ({"Referer": "https://b.corp.example/"}, "https", None),
        ({"Referer": "http://gateway:8080/tasks/1"}, "https", "Referer"),
        ({"Referer": "https://evil.example/"}, "https", "Referer"),
        ({"Referer": "tasks/1"}, "https", "Referer"),
        ({"X-Forwarded-Proto": "https"}, "http", "Referer"),
        # Plain HTTP without Origin: the token alone decides, as in Django.
        ({}, "http", None),
    ],
)
def test_django_checks_the_origin_then_the_referer_on_https(
    extra: dict[str, str], scheme: str, refused: str | None
) -> None:
    checked = request(headers=session(**GOOD, **extra), scheme=scheme)
    if refused is None:
        assert cvat_credential(checked) is not None
        return
    with pytest.raises(ApiError) as caught:
        cvat_credential(checked)
    assert (caught.value.status, caught.value.field) == (403, refused)
    assert caught.value.error.startswith("CSRF failed: ")


def test_the_origin_is_checked_before_the_token() -> None:
    with pytest.raises(ApiError) as caught:
        cvat_credential(request(headers=session(Origin="https://evil.example")))
    assert caught.value.field == "Origin" and "evil.example" in caught.value.error


@pytest.mark.parametrize("origin", ["cvat.example.com", "https://", "*.example.com"])
def test_a_trusted_origin_needs_a_scheme_and_a_host(origin: str) -> None:
    with pytest.raises(ValueError, match="EVENTPIPE_CVAT_CSRF_TRUSTED_ORIGINS"):
        TrustedOrigins.parse(f"https://ok.example,{origin}")
