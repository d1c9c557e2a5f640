"""CVAT as the identity provider (EVENTPIPE_CVAT_URL), against a stand-in for CVAT's server.

CVAT's server cannot run here: tests.integration.cvat_support answers as CVAT answers, with bodies
shaped like cvat-sdk's User, OrganizationRead, MembershipRead and paginated list models (the first
test parses them with cvat-sdk itself). The gateway is real, on a real broker.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import string
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cvat_sdk.api_client import ApiClient, Configuration, models
from openapi_spec_validator import validate

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from tests.integration.cvat_support import (
    CVAT_JSON,
    CvatOrg,
    CvatUser,
    FakeCvat,
    check_against_cvat_schema,
    cvat_schema,
    negotiated,
    running_cvat,
)
from tests.integration.gateway_support import RunningGateway, running_gateway
from tests.integration.openapi_support import check_against_schema

CVAT_ACCEPT = {"Accept": CVAT_JSON}


def batch() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"events": [{"scope": "click:element", "timestamp": now}], "timestamp": now}


def token(user: CvatUser) -> dict[str, str]:
    return {"Authorization": f"Token {next(iter(user.tokens))}"}


class Cvat:
    """The CVAT deployment of these tests: who is who, and in which organization."""

    def __init__(self) -> None:
        self.server = FakeCvat()
        add = self.server.add_user
        self.root = add("root", ["admin"])
        self.alice = add("alice", ["user"])
        self.wendy = add("wendy", ["worker"])
        self.olga, self.mary = add("olga", ["user"]), add("mary", ["user"])
        self.sue, self.will = add("sue", ["user"]), add("will", ["worker"])
        self.ivan = add("ivan", ["user"])
        # A Django superuser outside CVAT's groups (made superuser but not staff): CVAT gives
        # him no privilege, as to any user in none of its groups.
        self.sam = add("sam", [], is_superuser=True)
        for user in self.server.users:
            user.tokens.add(f"token-{user.username}-{secrets.token_hex(8)}")
        self.acme: CvatOrg = self.server.add_org("acme", self.olga)
        self.server.add_member(self.acme, self.mary, "maintainer")
        self.server.add_member(self.acme, self.sue, "supervisor")
        self.server.add_member(self.acme, self.will, "worker")
        # Invited, not yet joined: CVAT lists the membership as inactive.
        self.server.add_member(self.acme, self.ivan, "worker", is_active=False)


@pytest.fixture
def cvat() -> Iterator[Cvat]:
    deployment = Cvat()
    with running_cvat(deployment.server):
        yield deployment


def gateway_on(settings: Settings, cvat_url: str, **overrides: Any) -> Any:
    return running_gateway(settings.with_overrides(cvat_url=cvat_url, **overrides))


@pytest.fixture
def gateway(settings: Settings, cvat: Cvat) -> Iterator[RunningGateway]:
    with gateway_on(settings, cvat.server.url) as running:
        yield running


def post(gateway: RunningGateway, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.post(f"{gateway.url}/api/events", json=batch(), headers=headers, params=params)


def export(gateway: RunningGateway, headers: dict[str, str], **params: Any) -> int:
    return httpx.get(f"{gateway.url}/api/events", headers=headers, params=params).status_code


def test_the_stand_in_answers_as_cvat_sdk_models_expect(cvat: Cvat) -> None:
    config = Configuration(host=cvat.server.url, username="sue", password="sue-pw")
    with ApiClient(config) as client:
        me, _ = client.users_api.retrieve_self()
        assert isinstance(me, models.MetaUser) and me.groups == ["user"]
        orgs, _ = client.organizations_api.list(slug="acme")
        assert isinstance(orgs, models.PaginatedOrganizationReadList)
        assert [org.slug for org in orgs.results] == ["acme"]
        members, _ = client.memberships_api.list(org="acme", user="sue")
        assert isinstance(members, models.PaginatedMembershipReadList)
        assert [(m.role, m.organization) for m in members.results] == [("supervisor", cvat.acme.id)]


def _masked(secret: str) -> str:
    """A CSRF token masked as Django masks the one its pages and cookies hand out."""
    chars = string.ascii_letters + string.digits
    mask = "".join(secrets.choice(chars) for _ in secret)
    return mask + "".join(
        chars[(chars.index(s) + chars.index(m)) % len(chars)]
        for s, m in zip(secret, mask, strict=True)
    )


def _credentials(kind: str, user: CvatUser) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and cookies of one credential kind of a CVAT client."""
    if kind == "token":
        return token(user), {}
    if kind == "access token":
        return {"Authorization": f"Bearer {user.new_access_token()}"}, {}
    if kind == "basic":
        encoded = base64.b64encode(f"{user.username}:{user.password}".encode()).decode()
        return {"Authorization": f"Basic {encoded}"}, {}
    session, csrf = (
        secrets.token_hex(16),
        "".join(secrets.choice(string.ascii_letters) for _ in range(32)),
    )
    user.sessions.add(session)
    return {"X-CSRFToken": _masked(csrf)}, {"sessionid": session, "csrftoken": csrf}


@pytest.mark.parametrize(
    ("accept", "rendered"),
    [
        (None, CVAT_JSON),  # DRF reads no Accept as */*
        ("*/*", CVAT_JSON),
        ("application/*", CVAT_JSON),
        (f"{CVAT_JSON}; version=2.0", CVAT_JSON),  # cvat-sdk's, with CVAT's API version
        ("application/json", None),
        ("application/json, text/plain", None),
        # The most specific accepted type is tried first; quality values do not reorder.
        ("application/json, */*;q=0.1", CVAT_JSON),
        ("text/html, */*", "text/html"),
        ("text/*", "text/html"),
    ],
)
def test_the_stand_in_negotiates_as_drf_does_with_cvats_renderers(
    accept: str | None, rendered: str | None
) -> None:
    assert negotiated(accept) == rendered


def test_the_stand_in_negotiates_as_cvat_and_its_bodies_are_cvats_schema(cvat: Cvat) -> None:
    """Django REST framework with CVAT's renderers: application/json is a 406, and every JSON
    answer is application/vnd.cvat+json, shaped as cvat/schema.yml describes it."""
    schema = cvat_schema()
    access = cvat.sue.new_access_token(read_only=True)
    with httpx.Client(base_url=cvat.server.url, headers=token(cvat.sue)) as client:
        refused = client.get("/api/users/self", headers={"Accept": "application/json"})
        anything = client.get("/api/users/self", headers={"Accept": "*/*"})
        answers = {
            "/api/users/self": client.get("/api/users/self", headers=CVAT_ACCEPT),
            "/api/organizations": client.get("/api/organizations", params={"slug": "acme"}),
            "/api/organizations/{id}": client.get(f"/api/organizations/{cvat.acme.id}"),
            "/api/memberships": client.get("/api/memberships", params={"org": "acme"}),
            "/api/auth/access_tokens/self": client.get(
                "/api/auth/access_tokens/self", headers={"Authorization": f"Bearer {access}"}
            ),
        }
    assert refused.status_code == 406
    assert refused.headers["content-type"] == CVAT_JSON
    assert refused.json() == {"detail": "Could not satisfy the request Accept header."}
    assert anything.status_code == 200 and anything.headers["content-type"] == CVAT_JSON
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.text)
        check_against_cvat_schema(schema, path, answer)
    assert answers["/api/auth/access_tokens/self"].json()["read_only"] is True


@pytest.mark.parametrize("kind", ["token", "access token", "basic", "session"])
def test_each_kind_of_cvat_credential_signs_in_as_the_cvat_user(
    gateway: RunningGateway, cvat: Cvat, kind: str
) -> None:
    """Against a CVAT that refuses application/json, as the real one does."""
    headers, cookies = _credentials(kind, cvat.alice)
    with httpx.Client(base_url=gateway.url, cookies=cookies, headers=headers) as client:
        started = client.post("/api/events/export")
        assert started.status_code == 202, started.text
        request = client.get(f"/api/requests/{started.json()['rq_id']}")
        posted = client.post("/api/events", json=batch())
    assert request.status_code == 200, request.text
    assert request.json()["owner"] == {"id": cvat.alice.id, "username": "alice"}
    assert cvat.server.accepts_seen and set(cvat.server.accepts_seen) == {CVAT_JSON}
    if kind == "access token":
        # CVAT lets an access token export and download, nothing else of the events API.
        assert (posted.status_code, posted.json()["field"]) == (403, "Authorization")
        return
    assert posted.status_code == 201, posted.text
    [event] = posted.json()["events"]
    assert (event["user_id"], event["user_name"], event["user_email"]) == (
        cvat.alice.id,
        "alice",
        "alice@example.com",
    )


def test_a_cookie_cvat_sets_for_one_caller_never_reaches_cvat_for_another(
    gateway: RunningGateway, cvat: Cvat
) -> None:
    """CVAT refreshes a session's cookie on its answers; were the gateway's client to keep it,
    the next caller's request would reach CVAT as alice's session too."""
    headers, cookies = _credentials("session", cvat.alice)
    with httpx.Client(cookies=cookies) as client:
        assert client.post(f"{gateway.url}/api/events", json=batch(), headers=headers).is_success
    assert post(gateway, token(cvat.wendy)).status_code == 201
    assert [sorted(seen) for seen in cvat.server.cookies_seen] == [["csrftoken", "sessionid"], []]


def test_a_session_must_send_its_csrf_header_on_a_post(gateway: RunningGateway, cvat: Cvat) -> None:
    _, cookies = _credentials("session", cvat.alice)
    with httpx.Client(cookies=cookies) as client:
        missing = client.post(f"{gateway.url}/api/events", json=batch())
        wrong = client.post(
            f"{gateway.url}/api/events", json=batch(), headers={"X-CSRFToken": _masked("x" * 32)}
        )
        plain = client.post(
            f"{gateway.url}/api/events",
            json=batch(),
            headers={"X-CSRFToken": cookies["csrftoken"]},
        )
        # Reading needs no CSRF header, as in Django.
        read = client.get(f"{gateway.url}/api/events")
    assert (missing.status_code, missing.json()["field"]) == (403, "X-CSRFToken")
    assert (wrong.status_code, wrong.json()["field"]) == (403, "X-CSRFToken")
    assert plain.status_code == 201
    assert read.status_code == 202


def test_the_schema_lists_cvat_sessions_and_a_session_gets_the_answers_it_documents(
    gateway: RunningGateway, cvat: Cvat
) -> None:
    headers, cookies = _credentials("session", cvat.alice)
    with httpx.Client(base_url=gateway.url, cookies=cookies) as client:
        document = client.get("/api/schema").json()
        validate(document)
        read = client.get("/api/events")
        posted = client.post("/api/events", json=batch(), headers=headers)
        without_csrf = client.post("/api/events", json=batch())
    schemes = document["components"]["securitySchemes"]
    assert {name: (s["in"], s["name"]) for name, s in schemes.items() if s["type"] == "apiKey"} == {
        "tokenAuth": ("header", "Authorization"),
        "cvatSession": ("cookie", "sessionid"),
        "cvatCsrfCookie": ("cookie", "csrftoken"),
        "cvatCsrfHeader": ("header", "X-CSRFToken"),
    }
    operations = document["paths"]["/api/events"]
    assert {"cvatSession": []} in operations["get"]["security"]
    assert {"cvatSession": [], "cvatCsrfCookie": [], "cvatCsrfHeader": []} in operations["post"][
        "security"
    ]
    # What the document promises for each: the cookie alone reads, a POST needs the CSRF pair.
    assert (read.status_code, posted.status_code, without_csrf.status_code) == (202, 201, 403)
    for answer in (read, posted, without_csrf):
        check_against_schema(document, answer.request.method, answer)


def test_each_privilege_decides_what_a_caller_may_export(
    gateway: RunningGateway, cvat: Cvat
) -> None:
    other = cvat.olga.id
    # In the sandbox an admin may export anyone's events; a user or worker only their own.
    assert export(gateway, token(cvat.root), user_id=other) == 202
    assert export(gateway, token(cvat.alice), user_id=other) == 403
    assert export(gateway, token(cvat.wendy), user_id=other) == 403
    assert export(gateway, token(cvat.wendy), user_id=cvat.wendy.id) == 202
    # An admin may act in an organization it is no member of; a user may not.
    answer = post(gateway, {**token(cvat.root), "X-Organization": "acme"})
    assert answer.status_code == 201
    assert answer.json()["events"][0]["org_id"] == cvat.acme.id
    assert post(gateway, {**token(cvat.alice), "X-Organization": "acme"}).status_code == 403


def test_a_user_in_none_of_cvats_groups_has_no_privilege_even_as_superuser(
    gateway: RunningGateway, cvat: Cvat
) -> None:
    """CVAT reads privilege from groups alone: sam may post events, but export nothing, not even
    his own, and is no admin in an organization he is no member of."""
    assert post(gateway, token(cvat.sam)).status_code == 201
    refused = httpx.get(f"{gateway.url}/api/events", headers=token(cvat.sam))
    assert refused.status_code == 403 and "worker privilege" in refused.json()["error"]
    assert export(gateway, token(cvat.sam), user_id=cvat.sam.id) == 403
    assert post(gateway, {**token(cvat.sam), "X-Organization": "acme"}).status_code == 403


@pytest.mark.parametrize(
    ("member", "may_export_others"),
    [("olga", True), ("mary", True), ("sue", False), ("will", False)],
)
def test_each_org_role_decides_what_a_member_may_export(
    gateway: RunningGateway, cvat: Cvat, member: str, may_export_others: bool
) -> None:
    user = next(u for u in cvat.server.users if u.username == member)
    answer = post(gateway, token(user), org="acme")
    assert answer.status_code == 201
    [event] = answer.json()["events"]
    assert (event["org_id"], event["org_slug"]) == (cvat.acme.id, "acme")
    status = export(gateway, token(user), org_id=cvat.acme.id, user_id=cvat.root.id)
    assert status == (202 if may_export_others else 403)
    assert export(gateway, token(user), org_id=cvat.acme.id, user_id=user.id) == 202


def test_organizations_cvat_does_not_show_the_caller_are_403_and_absent_ones_404(
    gateway: RunningGateway, cvat: Cvat
) -> None:
    for headers, params, status in [
        ({**token(cvat.alice), "X-Organization": "acme"}, {}, 403),  # not a member
        (token(cvat.alice), {"org_id": cvat.acme.id}, 403),
        (token(cvat.ivan), {"org": "acme"}, 403),  # invited, not joined
        (token(cvat.sue), {"org": "nowhere"}, 404),  # no such organization, whoever asks
        ({**token(cvat.alice), "X-Organization": "nowhere"}, {}, 404),
        (token(cvat.root), {"org_id": 10**9}, 404),
        (token(cvat.sue), {"org_id": 10**9}, 404),
    ]:
        answer = post(gateway, headers, **params)
        assert answer.status_code == status, (headers, params, answer.text)
        assert "organization" in answer.json()["error"]


def test_cvat_refusing_the_credential_is_a_401(gateway: RunningGateway, cvat: Cvat) -> None:
    answer = post(gateway, {"Authorization": "Token not-a-cvat-token"})
    assert answer.status_code == 401
    assert post(gateway, {}).status_code == 401
    bad_password = base64.b64encode(b"alice:wrong").decode()
    assert post(gateway, {"Authorization": f"Basic {bad_password}"}).status_code == 401


def test_cvat_down_is_a_bounded_503(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    secret = f"token-{secrets.token_hex(8)}"
    with gateway_on(settings, f"http://127.0.0.1:{free_port()}") as gateway:
        started = time.monotonic()
        with caplog.at_level(logging.DEBUG):
            answer = post(gateway, {"Authorization": f"Token {secret}"})
        assert time.monotonic() - started < 3
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert "identity provider is unavailable" in answer.json()["error"]
    assert secret not in caplog.text


@pytest.mark.parametrize("failure", ["slow", "500"])
def test_cvat_slow_or_failing_is_a_bounded_503(
    settings: Settings, cvat: Cvat, failure: str
) -> None:
    if failure == "slow":
        cvat.server.delay_seconds = 5
    else:
        cvat.server.failing_status = 500
    with gateway_on(settings, cvat.server.url, cvat_timeout_seconds=0.5) as gateway:
        started = time.monotonic()
        answer = post(gateway, token(cvat.alice))
        assert time.monotonic() - started < 2.5
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()


async def test_one_call_to_cvat_serves_many_requests(gateway: RunningGateway, cvat: Cvat) -> None:
    headers = {**token(cvat.sue), "X-Organization": "acme"}
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        # Concurrent first requests share one lookup; later ones are answered from the cache.
        first = await asyncio.gather(
            *(client.post("/api/events", json=batch(), headers=headers) for _ in range(10))
        )
        later = [await client.post("/api/events", json=batch(), headers=headers) for _ in range(20)]
    assert {answer.status_code for answer in first + later} == {201}
    assert cvat.server.calls == {
        "/api/users/self": 1,
        "/api/organizations": 1,
        "/api/memberships": 1,
    }


def test_a_revoked_cvat_token_is_refused_once_the_cache_time_is_over(
    settings: Settings, cvat: Cvat
) -> None:
    with gateway_on(settings, cvat.server.url, cvat_cache_seconds=1.0) as gateway:
        headers = token(cvat.alice)
        assert post(gateway, headers).status_code == 201
        cvat.alice.tokens.clear()
        revoked_at = time.monotonic()
        assert post(gateway, headers).status_code == 201  # still cached
        while post(gateway, headers).status_code != 401:
            assert time.monotonic() - revoked_at < 5, "the revoked token kept working"
            time.sleep(0.05)
        assert time.monotonic() - revoked_at < 2
        assert cvat.server.calls["/api/users/self"] >= 2


@pytest.mark.parametrize("selector", ["slug", "id"])
def test_cvat_refusing_the_org_lookup_after_the_user_was_cached_is_a_401(
    gateway: RunningGateway, cvat: Cvat, selector: str
) -> None:
    """The user lookup is cached, so the org lookup is the first CVAT call to see the revoked
    token: its 401 is passed on as a 401, never as a 403 or a 502."""
    headers = token(cvat.sue)
    assert post(gateway, headers).status_code == 201
    cvat.sue.tokens.clear()
    if selector == "slug":
        answer = post(gateway, headers, org="acme")
        org_path = "/api/organizations"
    else:
        answer = post(gateway, headers, org_id=cvat.acme.id)
        org_path = f"/api/organizations/{cvat.acme.id}"
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "CVAT no longer accepts these credentials"
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert cvat.server.calls["/api/users/self"] == 1
    assert cvat.server.calls[org_path] == 1
    assert cvat.server.calls["/api/memberships"] == 0


def test_cvat_refusing_with_403_or_answering_nonsense_is_passed_on_as_such(
    settings: Settings, cvat: Cvat
) -> None:
    with gateway_on(settings, cvat.server.url) as gateway:
        cvat.server.failing_status = 403
        cvat.server.failing_detail = "You do not have permission to perform this action."
        refused = post(gateway, token(cvat.alice))
        cvat.server.failing_status = None
        cvat.server.answers_html = True
        nonsense = post(gateway, token(cvat.alice))
        cvat.server.answers_html = False
        cvat.server.failing_status = 500
        unavailable = post(gateway, token(cvat.alice))
        document = httpx.get(f"{gateway.url}/api/schema").json()
    # Each as /api/schema documents it.
    for answer in (refused, nonsense, unavailable):
        check_against_schema(document, "POST", answer)
    assert refused.status_code == 403
    assert "You do not have permission" in refused.json()["error"]
    assert nonsense.status_code == 502
    assert "unexpected shape" in nonsense.json()["error"]


def test_failed_cvat_logins_are_throttled_before_cvat_is_asked(
    settings: Settings, cvat: Cvat
) -> None:
    wrong = {"Authorization": "Basic " + base64.b64encode(b"alice:guess").decode()}
    with gateway_on(settings, cvat.server.url, login_failure_limit=2) as gateway:
        statuses = [post(gateway, wrong).status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]
    assert cvat.server.calls["/api/users/self"] == 2


def test_cvat_users_use_the_current_export_flow_and_a_session_needs_csrf_there_too(
    gateway: RunningGateway, cvat: Cvat
) -> None:
    started = httpx.post(
        f"{gateway.url}/api/events/export", headers=token(cvat.sue), params={"org": "acme"}
    )
    assert started.status_code == 202, started.text
    rq_id = started.json()["rq_id"]
    mine = httpx.get(f"{gateway.url}/api/requests/{rq_id}", headers=token(cvat.sue))
    assert mine.status_code == 200 and mine.json()["owner"]["id"] == cvat.sue.id
    # Another CVAT user may not see it, not even the org's maintainer; CVAT's admin may.
    theirs = httpx.get(f"{gateway.url}/api/requests/{rq_id}", headers=token(cvat.mary))
    assert theirs.status_code == 403
    admins = httpx.get(f"{gateway.url}/api/requests/{rq_id}", headers=token(cvat.root))
    assert admins.status_code == 200 and admins.json()["owner"]["username"] == "sue"
    headers, cookies = _credentials("session", cvat.sue)
    with httpx.Client(cookies=cookies) as client:
        forged = client.post(f"{gateway.url}/api/events/export")
        sent = client.post(f"{gateway.url}/api/events/export", headers=headers)
    assert (forged.status_code, forged.json()["field"]) == (403, "X-CSRFToken")
    assert sent.status_code == 202


def test_an_access_token_exports_and_downloads_and_a_read_only_one_cannot_cancel(
    gateway: RunningGateway, cvat: Cvat
) -> None:
    """CVAT's access_token_plugin.events.rego: an access token may export and download, and
    never post events; a read-only one also cannot cancel a request."""
    outcomes = {}
    for read_only in (False, True):
        bearer = {"Authorization": f"Bearer {cvat.sue.new_access_token(read_only=read_only)}"}
        with httpx.Client(base_url=gateway.url, headers=bearer) as client:
            posted = client.post("/api/events", json=batch())
            started = client.post("/api/events/export", params={"org": "acme"})
            assert started.status_code == 202, started.text
            rq_id = started.json()["rq_id"]
            assert client.get(f"/api/requests/{rq_id}").status_code == 200
            outcomes[read_only] = (posted.status_code, client.post(f"/api/requests/{rq_id}/cancel"))
    assert outcomes[False][0] == outcomes[True][0] == 403
    assert outcomes[False][1].status_code == 200
    refused = outcomes[True][1]
    assert (refused.status_code, refused.json()["field"]) == (403, "Authorization")
    assert "read-only" in refused.json()["error"]
    assert cvat.server.calls["/api/auth/access_tokens/self"] == 2


def test_a_session_post_passes_djangos_origin_check_with_cvats_trusted_origins(
    settings: Settings, cvat: Cvat
) -> None:
    """A page of another origin may not post with the session unless CVAT trusts that origin."""
    trusted = "https://cvat.example.com,https://*.labs.example"
    with gateway_on(settings, cvat.server.url, cvat_csrf_trusted_origins=trusted) as gateway:
        headers, cookies = _credentials("session", cvat.alice)
        with httpx.Client(base_url=gateway.url, cookies=cookies, headers=headers) as client:
            answers = {
                origin: client.post("/api/events", json=batch(), headers={"Origin": origin})
                for origin in (
                    gateway.url,
                    "https://cvat.example.com",
                    "https://eu.labs.example",
                    "https://evil.example",
                    "http://cvat.example.com",
                )
            }
            # Behind CVAT's HTTPS proxy, without Origin, the Referer must be of a trusted host.
            proxied = {"X-Forwarded-Proto": "https"}
            no_referer = client.post("/api/events", json=batch(), headers=proxied)
            referred = client.post(
                "/api/events",
                json=batch(),
                headers={**proxied, "Referer": "https://cvat.example.com/tasks/3"},
            )
    assert {origin: answer.status_code for origin, answer in answers.items()} == {
        gateway.url: 201,
        "https://cvat.example.com": 201,
        "https://eu.labs.example": 201,
        "https://evil.example": 403,
        "http://cvat.example.com": 403,
    }
    assert answers["https://evil.example"].json()["field"] == "Origin"
    assert (no_referer.status_code, no_referer.json()["field"]) == (403, "Referer")
    assert referred.status_code == 201
