"""Which CVAT credential a request carries, and Django's CSRF rule for the web UI's session."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from ingest_gateway.cvat_credentials import cvat_credential
from ingest_gateway.errors import ApiError

SECRET = "abcdefghijklmnopqrstuvwxyzABCDEF"
# SECRET masked with the mask "bbbb...": each character moved one place on in Django's alphabet.
MASKED = "b" * 32 + "bcdefghijklmnopqrstuvwxyzABCDEFG"


def request(method: str = "POST", headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": method, "headers": raw, "query_string": b""})


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
