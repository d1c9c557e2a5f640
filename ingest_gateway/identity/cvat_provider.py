"""CVAT as the identity provider (``settings.cvat_url``): a caller's CVAT credentials are
forwarded to CVAT, which says who they are and what they may see.

- Who: ``GET /api/users/self`` gives the id, username, email and privilege (CVAT's ``groups``:
  the highest of admin, user, worker; none without one, whatever ``is_superuser`` says). For an
  access token (``Authorization: Bearer``), ``GET /api/auth/access_tokens/self`` says which one
  and whether it is read-only: :mod:`ingest_gateway.identity.permissions` lets it do less.
- Where: an org selector (:mod:`ingest_gateway.identity.org_selection`, CVAT's own rules) is
  looked up with ``GET /api/organizations?slug=…`` or ``GET /api/organizations/{id}``, and the
  caller's role with ``GET /api/memberships?org=…&user=…``. Every call carries the caller's own
  credentials, so CVAT decides what the caller may see: an organization it does not show, or a
  membership it does not list (or an invitation not yet accepted), is a 403 here, except for
  admins; one that does not exist is CVAT's 404.

CVAT's 401 is a 401 here and its 403 a 403. CVAT unreachable, answering 5xx, or not answering
within ``cvat_timeout_seconds`` (for each lookup: the user, then the org context with all its
calls) is a 503 with ``Retry-After``:
never a fallback to anonymous. An answer of an unexpected shape is a 502. Results are cached per
credential (by its hash) for ``cvat_cache_seconds``, in at most ``cvat_cache_entries`` entries,
and concurrent misses for one credential share one call to CVAT (the authenticator's cache
for users, :class:`SingleFlightCache` for org contexts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Final, TypeVar

import httpx
import msgspec

from eventpipe.identity import ORG_ROLES, AccessToken, Org, OrgRole, User, privilege_of
from eventpipe.settings import CvatSettings, SettingsError
from ingest_gateway.errors import ApiError, unauthorized, unavailable
from ingest_gateway.identity.cvat_credentials import CvatCredential
from ingest_gateway.identity.org_selection import OrgContext, OrgSelector
from ingest_gateway.single_flight import SingleFlightCache

log = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S")

# CVAT's renderer (cvat/apps/engine/renderers.py), the media type of every JSON answer it sends.
CVAT_MEDIA_TYPE: Final = "application/vnd.cvat+json"
_NO_LONGER_ACCEPTED: Final = "CVAT no longer accepts these credentials"
# CVAT's own error texts are short; a longer one is cut rather than passed on whole.
_MAX_DETAIL: Final = 200


# The parts of cvat-sdk's models (User, OrganizationRead, MembershipRead, Paginated*List) that
# are used here; CVAT sends more fields, which are ignored.
class _CvatUser(msgspec.Struct):
    id: int
    username: str
    email: str | None = None
    groups: list[str] = []


class _CvatAccessToken(msgspec.Struct):
    id: int
    read_only: bool


class _CvatOrganization(msgspec.Struct):
    id: int
    slug: str


class _BasicUser(msgspec.Struct):
    id: int
    username: str


class _CvatMembership(msgspec.Struct):
    user: _BasicUser
    organization: int
    role: str | None = None
    is_active: bool = True


class _Organizations(msgspec.Struct):
    results: list[_CvatOrganization]


class _Memberships(msgspec.Struct):
    results: list[_CvatMembership]


class CvatUnavailableError(Exception):
    """CVAT could not answer; becomes a 503."""


class CvatIdentityProvider:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 3.0,
        cache_seconds: float = 10.0,
        max_entries: int = 10_000,
    ) -> None:
        self.cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_seconds,
            # A redirect would be to a login page, not an answer.
            follow_redirects=False,
            # The only JSON CVAT renders: Django REST framework answers 406 to application/json.
            headers={"Accept": CVAT_MEDIA_TYPE},
            # One client serves every caller: a cookie CVAT sets for one must never ride along
            # on another's request, so the client keeps none.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )
        self._contexts: SingleFlightCache[tuple[bytes, OrgSelector], OrgContext] = (
            SingleFlightCache(cache_seconds, max_entries)
        )

    @classmethod
    def from_settings(cls, settings: CvatSettings) -> CvatIdentityProvider | None:
        url = settings.cvat_url.strip()
        if not url:
            return None
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"EVENTPIPE_CVAT_URL={url!r} is not an http:// or https:// address")
        return cls(
            url,
            timeout_seconds=settings.cvat_timeout_seconds,
            cache_seconds=settings.cvat_cache_seconds,
            max_entries=settings.cvat_cache_entries,
        )

    async def user(self, credential: CvatCredential) -> User | None:
        """The CVAT user the credential proves; None when CVAT answers 401. The authenticator
        caches and shares this lookup like its others
        (:mod:`ingest_gateway.identity.authentication`)."""
        return await self._bounded(self._fetch_user(credential))

    async def org_context(
        self, credential: CvatCredential, user: User, selector: OrgSelector
    ) -> OrgContext:
        """The org context ``selector`` names, as CVAT shows it to this credential, or a 403."""
        return await self._bounded(
            self._contexts.get(
                (credential.cache_key, selector),
                lambda: self._fetch_context(credential, user, selector),
            )
        )

    async def close(self) -> None:
        await self._client.aclose()

    # --- calls to CVAT ------------------------------------------------------------------------

    async def _fetch_user(self, credential: CvatCredential) -> User | None:
        answer = await self._get("/api/users/self", credential)
        if answer.status_code == 401:
            return None
        cvat_user = _decode(answer, _CvatUser)
        access_token = None
        if credential.is_access_token:
            token = _decode(
                await self._get("/api/auth/access_tokens/self", credential), _CvatAccessToken
            )
            access_token = AccessToken(token.id, token.read_only)
        return User(
            cvat_user.id,
            cvat_user.username,
            cvat_user.email or None,
            privilege_of(cvat_user.groups),
            access_token=access_token,
        )

    async def _fetch_context(
        self, credential: CvatCredential, user: User, selector: OrgSelector
    ) -> OrgContext:
        org = await self._organization(credential, selector)
        answer = await self._get(
            "/api/memberships", credential, {"org": org.slug, "user": user.username}
        )
        role: OrgRole | None = None
        if answer.status_code != 403:  # CVAT refuses a non-member its org's memberships
            for membership in _decode(answer, _Memberships).results:
                if (
                    membership.user.id == user.id
                    and membership.organization == org.id
                    and membership.is_active
                ):
                    role = next((r for r in ORG_ROLES if r == membership.role), None)
        if role is None and not user.is_admin:
            raise selector.not_a_member()
        return OrgContext(org, role)

    async def _organization(self, credential: CvatCredential, selector: OrgSelector) -> Org:
        """The organization ``selector`` names, a 404 when CVAT has none, a 403 when CVAT does
        not show it to this caller."""
        if selector.org_id is not None:
            answer = await self._get(f"/api/organizations/{selector.org_id}", credential)
            if answer.status_code == 200:
                found = _decode(answer, _CvatOrganization)
                return Org(found.id, found.slug)
            if answer.status_code not in (403, 404):
                raise _not_ok(answer)
            context = {"org_id": str(selector.org_id)}
        else:
            assert selector.slug is not None  # a selector names an id or a slug
            answer = await self._get("/api/organizations", credential, {"slug": selector.slug})
            for org in _decode(answer, _Organizations).results:
                if org.slug == selector.slug:
                    return Org(org.id, org.slug)
            context = {"org": selector.slug}
        # Hidden from this caller, or absent: CVAT resolves the org context of any call before
        # its permissions, so one that does not exist is its 404 whoever asks.
        probe = await self._get("/api/memberships", credential, context)
        if probe.status_code == 404:
            raise selector.does_not_exist()
        if probe.status_code == 401:
            raise unauthorized(_NO_LONGER_ACCEPTED)
        raise selector.not_a_member()

    async def _get(
        self, path: str, credential: CvatCredential, params: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            answer = await self._client.get(path, params=params, headers=credential.headers)
        except httpx.TimeoutException as exc:
            raise CvatUnavailableError(f"CVAT did not answer in time ({path})") from exc
        except httpx.HTTPError as exc:
            raise CvatUnavailableError(
                f"CVAT cannot be reached ({type(exc).__name__} on {path})"
            ) from exc
        if answer.status_code >= 500:
            raise CvatUnavailableError(f"CVAT answered {answer.status_code} on {path}")
        if answer.status_code == 403 and path == "/api/users/self":
            raise ApiError(403, f"CVAT refused these credentials: {_detail(answer)}")
        return answer

    async def _bounded(self, lookup: Awaitable[T]) -> T:
        """``lookup``'s result within the timeout, or a 503 saying CVAT did not answer."""
        try:
            async with asyncio.timeout(self._timeout):
                return await lookup
        except TimeoutError:
            reason = f"CVAT did not answer within {self._timeout:g} s"
        except CvatUnavailableError as exc:
            reason = str(exc)
        log.warning("cannot check a caller with CVAT: %s", reason)
        raise unavailable(f"the identity provider is unavailable: {reason}; retry later")


def _decode(answer: httpx.Response, kind: type[S]) -> S:
    if answer.status_code != 200:
        raise _not_ok(answer)
    try:
        return msgspec.json.decode(answer.content, type=kind)
    except msgspec.DecodeError:  # ValidationError included
        raise _unexpected(answer) from None


def _not_ok(answer: httpx.Response) -> ApiError:
    """What an answer other than 200 means: CVAT's 401, the credential no longer accepted; any
    other, CVAT answering unexpectedly."""
    if answer.status_code == 401:
        return unauthorized(_NO_LONGER_ACCEPTED)
    return _unexpected(answer)


def _unexpected(answer: httpx.Response) -> ApiError:
    log.warning("CVAT answered %s %s unexpectedly", answer.status_code, answer.request.url.path)
    return ApiError(502, f"CVAT answered {answer.status_code} in an unexpected shape")


def _detail(answer: httpx.Response) -> str:
    try:
        detail = answer.json().get("detail", "")
    except (ValueError, AttributeError):
        detail = ""
    return str(detail)[:_MAX_DETAIL] or f"status {answer.status_code}"
