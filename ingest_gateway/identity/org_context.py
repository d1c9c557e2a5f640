"""In which organization a request acts: ``X-Organization: <slug>``, ``?org=<slug>`` or
``?org_id=<int>``; none of them means the caller's personal sandbox.

The selection rules are CVAT's: ``org_id`` may not be combined with a slug, and the header and
``org`` may not disagree. An organization that does not exist is a 404, as in CVAT; a caller
must be a member of the organization (admins may act in any), else it is a 403.
Successful resolutions are cached like credentials; refusals are not, so a membership granted
with ``eventpipe orgs add-member`` takes effect at once. A JWT caller's memberships come from its
token (``User.memberships``); only an admin acting outside them has the org looked up in the store.
With CVAT as the identity provider, CVAT users' contexts come from CVAT
(:mod:`ingest_gateway.identity.cvat_provider`).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from eventpipe.contracts import Identity
from eventpipe.identity import IdentityStore, Membership, Org, User
from ingest_gateway.errors import ApiError
from ingest_gateway.identity.cvat_credentials import cvat_credential
from ingest_gateway.identity.cvat_provider import CvatIdentityProvider
from ingest_gateway.identity.org_selection import (
    SANDBOX,
    OrgContext,
    OrgSelector,
    parse_org_selector,
)
from ingest_gateway.params import single
from ingest_gateway.ttl_cache import TtlCache


class OrgResolver:
    def __init__(self, store: IdentityStore, cache_seconds: float) -> None:
        self._store = store
        self._resolved: TtlCache[tuple[int, OrgSelector], OrgContext] = TtlCache(cache_seconds)

    async def resolve(self, user: User, selector: OrgSelector | None) -> OrgContext:
        """The context ``user`` acts in, or a 403 :class:`ApiError` naming the organization."""
        if selector is None:
            return SANDBOX
        if user.memberships is not None:
            return await self._claimed(user, user.memberships, selector)
        cache_key = (user.id, selector)
        context = self._resolved.get(cache_key)
        if context is None:
            context = await asyncio.to_thread(self._lookup, user, selector)
            self._resolved.put(cache_key, context)
        return context

    async def _claimed(
        self, user: User, memberships: tuple[Membership, ...], selector: OrgSelector
    ) -> OrgContext:
        for membership in memberships:
            if membership.org.slug == selector.slug or membership.org.id == selector.org_id:
                return OrgContext(membership.org, membership.role)
        if not user.is_admin:
            raise selector.not_a_member()
        # The store's memberships belong to its own users, whose ids may equal this caller's.
        return OrgContext(await asyncio.to_thread(self._existing_org, selector), None)

    def _existing_org(self, selector: OrgSelector) -> Org:
        if selector.slug is not None:
            org = self._store.org_by_slug(selector.slug)
        else:
            assert selector.org_id is not None
            org = self._store.org_by_id(selector.org_id)
        if org is None:
            raise selector.does_not_exist()
        return org

    def _lookup(self, user: User, selector: OrgSelector) -> OrgContext:
        org = self._existing_org(selector)
        role = self._store.role_of(org.id, user.id)
        if role is None and not user.is_admin:
            raise ApiError(
                403,
                f"you are not a member of organization {org.slug!r}",
                field=selector.source,
            )
        return OrgContext(org, role)


def event_identity(user: User, context: OrgContext) -> Identity:
    """The identity stamped onto the events of a request."""
    return Identity(
        user_id=user.id,
        user_name=user.username,
        user_email=user.email,
        org_id=None if context.org is None else context.org.id,
        org_slug=None if context.org is None else context.org.slug,
    )


def org_resolver_of(request: Request) -> OrgResolver:
    resolver: OrgResolver = request.app.state.org_resolver
    return resolver


async def resolve_org_context(request: Request, user: User) -> OrgContext:
    """The organization context of ``request`` for ``user`` (see the module docstring)."""
    selector = parse_org_selector(
        single(request.headers, "X-Organization"),
        single(request.query_params, "org"),
        single(request.query_params, "org_id"),
    )
    cvat: CvatIdentityProvider | None = request.app.state.cvat
    if cvat is not None and selector is not None and user.memberships is None:
        # A CVAT user: CVAT says, for the caller's own credentials, what it may see.
        credential = cvat_credential(request)
        assert credential is not None  # the caller was authenticated with it
        return await cvat.org_context(credential, user, selector)
    return await org_resolver_of(request).resolve(user, selector)
