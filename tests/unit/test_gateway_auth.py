"""Authentication, organization context and the credential cache of the gateway (no HTTP)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from eventpipe.identity import IdentityStore, Org, User
from ingest_gateway.errors import ApiError
from ingest_gateway.identity.authentication import Authenticator, parse_basic
from ingest_gateway.identity.org_context import OrgResolver, event_identity
from ingest_gateway.identity.org_selection import OrgContext, OrgSelector, parse_org_selector
from ingest_gateway.ttl_cache import TtlCache


class CountingStore(IdentityStore):
    """The real store, counting the slow password checks."""

    password_checks = 0

    def verify_password(self, username: str, password: str) -> User | None:
        self.password_checks += 1
        return super().verify_password(username, password)


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    store = CountingStore(tmp_path)
    store.add_user("alice", "pa:ss", email="alice@example.com")
    store.add_user("root", "pw", admin=True)
    store.add_org("acme")
    store.add_org("other")
    store.add_member("acme", "alice", "supervisor")
    return store


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def status_of(error: pytest.ExceptionInfo[ApiError]) -> int:
    return error.value.status


async def test_basic_credentials_are_verified_once_then_cached(store: CountingStore) -> None:
    auth = Authenticator(store, cache_seconds=60)
    users = await asyncio.gather(*(auth.authenticate(basic("alice", "pa:ss")) for _ in range(20)))
    assert {u.username for u in users} == {"alice"}
    await auth.authenticate(basic("alice", "pa:ss"))
    assert store.password_checks == 1


async def test_wrong_password_is_401_with_a_challenge_and_never_cached(
    store: CountingStore,
) -> None:
    auth = Authenticator(store, cache_seconds=60)
    for _ in range(2):
        with pytest.raises(ApiError) as caught:
            await auth.authenticate(basic("alice", "nope"))
        assert status_of(caught) == 401
        assert caught.value.headers["WWW-Authenticate"].startswith("Basic")
    assert store.password_checks == 2


async def test_zero_cache_time_checks_every_time(store: CountingStore) -> None:
    auth = Authenticator(store, cache_seconds=0)
    await auth.authenticate(basic("alice", "pa:ss"))
    await auth.authenticate(basic("alice", "pa:ss"))
    assert store.password_checks == 2


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "bearer"])
async def test_tokens_authenticate_with_token_and_bearer_schemes(
    store: CountingStore, scheme: str
) -> None:
    token = store.create_token("alice")
    user = await Authenticator(store, 60).authenticate(f"{scheme} {token}")
    assert user.username == "alice"


@pytest.mark.parametrize(
    "header",
    [None, "", "Token ", "Bearer wrong", "Digest abc", "Basic !!!", basic("", "x"), "Basic"],
)
async def test_missing_or_bad_credentials_are_401(store: CountingStore, header: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        await Authenticator(store, 60).authenticate(header)
    assert status_of(caught) == 401


def test_parse_basic_keeps_colons_in_the_password() -> None:
    encoded = base64.b64encode(b"alice:a:b:c").decode()
    assert parse_basic(encoded) == ("alice", "a:b:c")


@pytest.mark.parametrize(
    ("header", "org", "org_id", "expected"),
    [
        (None, None, None, None),
        (None, "", None, None),
        ("acme", None, None, OrgSelector("X-Organization", slug="acme")),
        (None, "acme", None, OrgSelector("org", slug="acme")),
        ("acme", "acme", None, OrgSelector("org", slug="acme")),
        (None, None, "12", OrgSelector("org_id", org_id=12)),
        (None, None, "", None),
    ],
)
def test_org_selector(
    header: str | None, org: str | None, org_id: str | None, expected: OrgSelector | None
) -> None:
    assert parse_org_selector(header, org, org_id) == expected


@pytest.mark.parametrize(
    ("header", "org", "org_id", "field"),
    [
        ("acme", None, "1", "org_id"),
        (None, "acme", "1", "org_id"),
        ("acme", "other", None, "org"),
        (None, None, "one", "org_id"),
    ],
)
def test_conflicting_or_malformed_org_selection_is_400(
    header: str | None, org: str | None, org_id: str | None, field: str
) -> None:
    with pytest.raises(ApiError) as caught:
        parse_org_selector(header, org, org_id)
    assert (caught.value.status, caught.value.field) == (400, field)


async def test_members_resolve_with_their_role(store: CountingStore) -> None:
    alice = store.verify_password("alice", "pa:ss")
    assert alice is not None
    resolver = OrgResolver(store, 60)
    by_slug = await resolver.resolve(alice, OrgSelector("org", slug="acme"))
    assert by_slug.org is not None and by_slug.role == "supervisor"
    by_id = await resolver.resolve(alice, OrgSelector("org_id", org_id=by_slug.org.id))
    assert by_id == by_slug
    assert await resolver.resolve(alice, None) == OrgContext()


async def test_non_members_are_403_and_unknown_orgs_404_naming_the_org(
    store: CountingStore,
) -> None:
    alice = store.verify_password("alice", "pa:ss")
    assert alice is not None
    resolver = OrgResolver(store, 60)
    for selector, status, words in [
        (OrgSelector("X-Organization", slug="other"), 403, "not a member of organization 'other'"),
        (OrgSelector("org", slug="ghost"), 404, "organization 'ghost' does not exist"),
        (OrgSelector("org_id", org_id=999), 404, "organization with id 999 does not exist"),
    ]:
        with pytest.raises(ApiError) as caught:
            await resolver.resolve(alice, selector)
        assert (caught.value.status, caught.value.field) == (status, selector.source)
        assert words in caught.value.error


async def test_a_refusal_is_not_cached(store: CountingStore) -> None:
    alice = store.verify_password("alice", "pa:ss")
    assert alice is not None
    resolver = OrgResolver(store, 60)
    with pytest.raises(ApiError):
        await resolver.resolve(alice, OrgSelector("org", slug="other"))
    store.add_member("other", "alice", "worker")
    assert (await resolver.resolve(alice, OrgSelector("org", slug="other"))).role == "worker"


async def test_admins_may_act_in_any_existing_org(store: CountingStore) -> None:
    root = store.verify_password("root", "pw")
    assert root is not None
    context = await OrgResolver(store, 60).resolve(root, OrgSelector("org", slug="other"))
    assert context.org is not None and context.org.slug == "other" and context.role is None
    with pytest.raises(ApiError):
        await OrgResolver(store, 60).resolve(root, OrgSelector("org", slug="ghost"))


def test_event_identity() -> None:
    user = User(7, "alice", "alice@example.com", "user")
    assert event_identity(user, OrgContext(Org(3, "acme"), "owner")).org_slug == "acme"
    sandbox = event_identity(user, OrgContext())
    assert (sandbox.user_id, sandbox.org_id, sandbox.org_slug) == (7, None, None)


def test_ttl_cache_expires_and_bounds_its_size() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(10, max_entries=2, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)
    now[0] = 10.0
    assert cache.get("b") is None
