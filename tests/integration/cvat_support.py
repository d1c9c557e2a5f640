"""A small server that answers the identity part of CVAT's REST API as CVAT answers it.

CVAT's own server cannot run here, so this stands in for it, and only for what eventpipe asks:
``GET /api/users/self``, ``GET /api/auth/access_tokens/self``, ``GET /api/organizations``
(``slug`` filter), ``GET /api/organizations/{id}`` and ``GET /api/memberships`` (``org`` context,
``user`` filter). Its bodies are those of CVAT's OpenAPI document (``User``, ``AccessTokenRead``,
``OrganizationRead``, ``MembershipRead``, the paginated lists; tests check them against
``cvat/schema.yml`` and parse them with cvat-sdk itself).

It answers as Django REST framework does with CVAT's settings: content negotiation first, among
CVAT's two renderers (``application/vnd.cvat+json``, and ``text/html`` for the browsable API), so
an ``Accept`` matching neither is a 406, and every JSON answer, errors included, is
``application/vnd.cvat+json``. Its rules are CVAT's: DRF's 401 and 403 bodies (``{"detail":
...}``), credentials as Token, Bearer access token, Basic or session cookie, organizations visible
only to their members (all of them to admins; another one is the 404 of CVAT's filtered
queryset), an org context that does not exist is a 404 on any call, and a non-member asking for
an org's memberships is a 403.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import itertools
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml
from openapi_schema_validator import OAS30Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.responses import JSONResponse as _PlainJson
from starlette.routing import Route

from tests.conformance.cvat_source import cvat_file
from tests.integration.gateway_support import serving

JOINED = "2026-01-05T10:00:00.000000Z"
_ids = itertools.count(1)
CVAT_JSON = "application/vnd.cvat+json"
# CVAT's renderers in its order (REST_FRAMEWORK's DEFAULT_RENDERER_CLASSES).
_RENDERED = (CVAT_JSON, "text/html")


class JSONResponse(_PlainJson):
    """Every JSON answer of CVAT, as its renderer labels it."""

    media_type = CVAT_JSON


def negotiated(accept: str | None) -> str | None:
    """The media type DRF's content negotiation picks among CVAT's renderers for ``Accept``
    (absent: ``*/*``), or None for its 406. As in DRF, quality values are ignored: accepted
    types are tried from the most specific (with parameters, then exact, ``type/*``, ``*/*``),
    each against the renderers in CVAT's order."""
    accepted = [part.strip() for part in (accept or "*/*").split(",") if part.strip()]

    def precedence(media: str) -> int:
        kind, _, params = media.partition(";")
        main, _, sub = kind.strip().partition("/")
        if main == "*":
            return 0
        if sub == "*":
            return 1
        named = [p for p in params.split(";") if p.strip() and not p.strip().startswith("q=")]
        return 3 if named else 2

    for level in (3, 2, 1, 0):
        for rendered in _RENDERED:
            for media in (m for m in accepted if precedence(m) == level):
                main, _, sub = media.partition(";")[0].strip().partition("/")
                r_main, _, r_sub = rendered.partition("/")
                if main in ("*", r_main) and sub in ("*", r_sub):
                    return rendered
    return None


@dataclass
class CvatAccessToken:
    """A personal access token (``Authorization: Bearer``); read-only ones may not change data."""

    name: str
    read_only: bool = False
    id: int = field(default_factory=lambda: next(_ids))


@dataclass
class CvatUser:
    username: str
    password: str
    groups: list[str]
    email: str = ""
    is_superuser: bool = False
    id: int = field(default_factory=lambda: next(_ids))
    tokens: set[str] = field(default_factory=set)
    access_tokens: dict[str, CvatAccessToken] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)

    def new_access_token(self, *, read_only: bool = False) -> str:
        """A new access token, as CVAT hands it out once."""
        value = f"cvat_{secrets.token_urlsafe(24)}"
        self.access_tokens[value] = CvatAccessToken(f"{self.username}'s token", read_only)
        return value


@dataclass
class CvatOrg:
    slug: str
    owner: CvatUser
    id: int = field(default_factory=lambda: next(_ids))


@dataclass
class CvatMembership:
    org: CvatOrg
    user: CvatUser
    role: str
    is_active: bool = True
    id: int = field(default_factory=lambda: next(_ids))


@dataclass
class FakeCvat:
    users: list[CvatUser] = field(default_factory=list)
    orgs: list[CvatOrg] = field(default_factory=list)
    memberships: list[CvatMembership] = field(default_factory=list)
    # Requests answered, by path; and a delay before each answer, to play a slow CVAT.
    calls: Counter[str] = field(default_factory=Counter)
    delay_seconds: float = 0.0
    # Every request answered with this status and detail (CVAT failing, or a proxy refusing).
    failing_status: int | None = None
    failing_detail: str = "Server Error"
    # Every request answered 200 with a page that is not CVAT's JSON (a misrouted proxy).
    answers_html: bool = False
    # The cookies of every request, in order; Django refreshes a session's cookie on answers
    # (SESSION_SAVE_EVERY_REQUEST), which a shared HTTP client would then send for anyone.
    cookies_seen: list[dict[str, str]] = field(default_factory=list)
    # The Accept header of every request, in order (None: not sent).
    accepts_seen: list[str | None] = field(default_factory=list)
    url: str = ""

    def add_user(self, username: str, groups: list[str], **extra: Any) -> CvatUser:
        user = CvatUser(username, f"{username}-pw", groups, f"{username}@example.com", **extra)
        self.users.append(user)
        return user

    def add_org(self, slug: str, owner: CvatUser) -> CvatOrg:
        org = CvatOrg(slug, owner)
        self.orgs.append(org)
        self.memberships.append(CvatMembership(org, owner, "owner"))
        return org

    def add_member(
        self, org: CvatOrg, user: CvatUser, role: str, *, is_active: bool = True
    ) -> None:
        self.memberships.append(CvatMembership(org, user, role, is_active))

    # --- authentication, as Django REST framework's authentication classes do it -------------

    def _caller(self, request: Request) -> CvatUser | None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        for user in self.users:
            if scheme == "Token" and credentials in user.tokens:
                return user
            if scheme == "Bearer" and credentials in user.access_tokens:
                return user
            if scheme == "Basic" and _basic(credentials) == (user.username, user.password):
                return user
            if not scheme and request.cookies.get("sessionid") in user.sessions:
                return user
        return None

    def _visible_orgs(self, user: CvatUser) -> list[CvatOrg]:
        if "admin" in user.groups:
            return list(self.orgs)
        return [m.org for m in self.memberships if m.user is user and m.is_active]

    # --- endpoints --------------------------------------------------------------------------

    async def _answer(self, request: Request) -> tuple[CvatUser | None, Response | None]:
        self.calls[request.url.path] += 1
        self.accepts_seen.append(request.headers.get("accept"))
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.failing_status is not None:
            return None, JSONResponse({"detail": self.failing_detail}, self.failing_status)
        rendered = negotiated(request.headers.get("accept"))
        if rendered is None:
            return None, JSONResponse(
                {"detail": "Could not satisfy the request Accept header."}, 406
            )
        if self.answers_html or rendered != CVAT_JSON:
            return None, HTMLResponse("<html><body>Sign in</body></html>")
        user = self._caller(request)
        if user is None:
            detail = (
                "Invalid token."
                if request.headers.get("authorization")
                else "Authentication credentials were not provided."
            )
            return None, JSONResponse({"detail": detail}, 401)
        return user, None

    async def users_self(self, request: Request) -> Response:
        self.cookies_seen.append(dict(request.cookies))
        user, refusal = await self._answer(request)
        if refusal is not None:
            return refusal
        assert user is not None
        answer = JSONResponse(self._user_body(user))
        for session in sorted(user.sessions):
            answer.set_cookie("sessionid", session, httponly=True)
        return answer

    async def access_token_self(self, request: Request) -> Response:
        user, refusal = await self._answer(request)
        if refusal is not None:
            return refusal
        assert user is not None
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer":
            # Its only security scheme is accessTokenAuth (cvat/schema.yml).
            return JSONResponse(
                {"detail": "You do not have permission to perform this action."}, 403
            )
        return JSONResponse(self._access_token_body(user, user.access_tokens[value]))

    async def list_organizations(self, request: Request) -> Response:
        user, refusal = await self._answer(request)
        if refusal is not None:
            return refusal
        assert user is not None
        slug = request.query_params.get("slug")
        found = [o for o in self._visible_orgs(user) if slug is None or o.slug == slug]
        return JSONResponse(_page([self._org_body(o) for o in found]))

    async def retrieve_organization(self, request: Request) -> Response:
        user, refusal = await self._answer(request)
        if refusal is not None:
            return refusal
        assert user is not None
        org_id = int(request.path_params["id"])
        # CVAT's queryset holds only the organizations the caller may see.
        org = next((o for o in self._visible_orgs(user) if o.id == org_id), None)
        if org is None:
            return JSONResponse({"detail": "No Organization matches the given query."}, 404)
        return JSONResponse(self._org_body(org))

    async def list_memberships(self, request: Request) -> Response:
        user, refusal = await self._answer(request)
        if refusal is not None:
            return refusal
        assert user is not None
        # CVAT's middleware resolves the org context (org, X-Organization or org_id) first.
        slug = request.query_params.get("org") or request.headers.get("x-organization")
        org_id = request.query_params.get("org_id")
        org = next(
            (o for o in self.orgs if o.slug == slug or (org_id and str(o.id) == org_id)), None
        )
        if org is None:
            return JSONResponse({"detail": f"{slug or org_id} organization does not exist."}, 404)
        if org not in self._visible_orgs(user):
            return JSONResponse(
                {"detail": "You do not have permission to perform this action."}, 403
            )
        username = request.query_params.get("user")
        found = [
            m
            for m in self.memberships
            if m.org is org and (username is None or m.user.username == username)
        ]
        return JSONResponse(_page([self._membership_body(m) for m in found]))

    # --- bodies shaped like cvat-sdk's models -------------------------------------------------

    def _basic_user(self, user: CvatUser) -> dict[str, Any]:
        return {
            "url": f"{self.url}/api/users/{user.id}",
            "id": user.id,
            "username": user.username,
            "first_name": user.username.title(),
            "last_name": "",
        }

    def _user_body(self, user: CvatUser) -> dict[str, Any]:
        return {
            **self._basic_user(user),
            "email": user.email,
            "groups": user.groups,
            "is_staff": user.is_superuser,
            "is_superuser": user.is_superuser,
            "is_active": True,
            "last_login": JOINED,
            "date_joined": JOINED,
            "has_analytics_access": "admin" in user.groups,
        }

    def _access_token_body(self, user: CvatUser, access: CvatAccessToken) -> dict[str, Any]:
        return {
            "id": access.id,
            "name": access.name,
            "created_date": JOINED,
            "updated_date": JOINED,
            "expiry_date": None,
            "last_used_date": JOINED,
            "read_only": access.read_only,
            "owner": self._basic_user(user),
        }

    def _org_body(self, org: CvatOrg) -> dict[str, Any]:
        return {
            "id": org.id,
            "slug": org.slug,
            "name": org.slug.upper(),
            "description": "",
            "created_date": JOINED,
            "updated_date": JOINED,
            "contact": {},
            "owner": self._basic_user(org.owner),
        }

    def _membership_body(self, membership: CvatMembership) -> dict[str, Any]:
        return {
            "id": membership.id,
            "user": self._basic_user(membership.user),
            "organization": membership.org.id,
            "is_active": membership.is_active,
            "joined_date": JOINED if membership.is_active else None,
            "role": membership.role,
            "invitation": None if membership.is_active else f"key{membership.id}",
        }

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/users/self", self.users_self),
                Route("/api/auth/access_tokens/self", self.access_token_self),
                Route("/api/organizations", self.list_organizations),
                Route("/api/organizations/{id:int}", self.retrieve_organization),
                Route("/api/memberships", self.list_memberships),
            ]
        )


def _basic(credentials: str) -> tuple[str, str] | None:
    try:
        username, _, password = base64.b64decode(credentials).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return username, password


def _page(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(results), "next": None, "previous": None, "results": results}


@functools.cache
def cvat_schema() -> dict[str, Any]:
    """CVAT's OpenAPI document, ``cvat/schema.yml`` of its source tree."""
    document: dict[str, Any] = yaml.load(
        cvat_file("cvat/schema.yml").read_text(), Loader=yaml.CSafeLoader
    )
    return document


def check_against_cvat_schema(document: dict[str, Any], path: str, answer: httpx.Response) -> None:
    """``answer``, a 200 to ``GET path``, is what CVAT's OpenAPI document ``document`` promises:
    its media type, and a body valid under OpenAPI 3.0's rules (``nullable`` included)."""
    content = document["paths"][path]["get"]["responses"]["200"]["content"]
    assert answer.headers["content-type"] in content, (path, answer.headers["content-type"])
    schema = {
        **content[answer.headers["content-type"]]["schema"],
        "components": document["components"],
    }
    validator = OAS30Validator(schema)
    errors = list(validator.iter_errors(answer.json()))
    assert not errors, f"{path}: {errors[0].message} at {list(errors[0].absolute_path)}"


@contextmanager
def running_cvat(cvat: FakeCvat) -> Iterator[FakeCvat]:
    with serving(cvat.app()) as server:
        cvat.url = server.url
        yield cvat
