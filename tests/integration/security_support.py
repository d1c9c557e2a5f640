"""A gateway with a few users (password ``<name>-pw``) and memberships, for the security tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from eventpipe.identity import IdentityStore, OrgRole
from eventpipe.settings import Settings
from tests.integration.gateway_support import RunningGateway, running_gateway


@dataclass
class World:
    gateway: RunningGateway
    settings: Settings
    store: IdentityStore


@contextmanager
def serving(
    settings: Settings, users: list[str], memberships: Sequence[tuple[str, str, OrgRole]] = ()
) -> Iterator[World]:
    """Users, then (org slug, username, role) memberships (orgs created on first mention)."""
    store = IdentityStore(settings.data_dir)
    for name in users:
        store.add_user(name, f"{name}-pw")
    for slug in dict.fromkeys(slug for slug, _, _ in memberships):
        store.add_org(slug)
    for slug, username, role in memberships:
        store.add_member(slug, username, role)
    with running_gateway(settings) as gateway:
        yield World(gateway, settings, store)
