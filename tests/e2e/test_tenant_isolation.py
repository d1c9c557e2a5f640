"""Two organizations and a sandbox user log events; every role in every context exports exactly
the rows CVAT's rules allow it: no row of another tenant, and none of its own missing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from eventpipe.identity import IdentityStore
from eventpipe_cli.embedded_broker import EmbeddedBroker
from eventpipe_cli.testing.pipeline import LocalPipeline
from tests.integration.export_api_support import ExportClient, event, pipeline_settings, post_events

pytestmark = pytest.mark.slow

ORG_MEMBERS = {
    "alpha": {"ann": "owner", "max": "maintainer", "sue": "supervisor", "wes": "worker"},
    "beta": {"bob": "owner", "wim": "worker"},
}
SANDBOX_ONLY = "solo"
ADMIN = "root"


@dataclass(frozen=True)
class Logged:
    """One posted event: who posted it, in which org (None = sandbox), and its marker."""

    user: str
    org: str | None

    @property
    def marker(self) -> str:
        return f"{self.user}@{self.org or 'sandbox'}"


# Who posts where: members in their orgs, some also in their sandbox, the admin in both places.
LOGGED = [
    *(Logged(user, org) for org, members in ORG_MEMBERS.items() for user in members),
    Logged("wes", None),
    Logged("bob", None),
    Logged(SANDBOX_ONLY, None),
    Logged(ADMIN, None),
    Logged(ADMIN, "alpha"),
]


def password(user: str) -> str:
    return f"{user}-password"


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker
) -> Iterator[LocalPipeline]:
    root = tmp_path_factory.mktemp("isolation")
    settings = pipeline_settings(root / "data", broker)
    store = IdentityStore(settings.data_dir)
    store.add_user(ADMIN, password(ADMIN), admin=True)
    store.add_user(SANDBOX_ONLY, password(SANDBOX_ONLY))
    for org, members in ORG_MEMBERS.items():
        store.add_org(org)
        for user, role in members.items():
            store.add_user(user, password(user))
            store.add_member(org, user, role)
    store.add_member("alpha", ADMIN, "worker")
    with LocalPipeline.run(settings, Path(root, "pipeline.log")) as running:
        at = datetime.now(UTC) - timedelta(hours=1)
        for logged in LOGGED:
            # One event a request: no working time, so every row is one of these markers.
            post_events(
                running.url,
                httpx.BasicAuth(logged.user, password(logged.user)),
                [event("click:element", at, obj_val=logged.marker)],
                org=logged.org,
            )
        running.wait_until_stored()
        yield running


def allowed(caller: str, org: str | None) -> Callable[[Logged], bool]:
    """The README's "Who may see what", written out per case as the test's own oracle."""
    role = ORG_MEMBERS.get(org or "", {}).get(caller)
    if caller == ADMIN:
        return lambda e: org is None or e.org == org
    if org is None:
        return lambda e: e.user == caller
    if role in ("owner", "maintainer"):
        return lambda e: e.org == org
    return lambda e: e.org == org and e.user == caller


CASES = [
    (ADMIN, None),
    (ADMIN, "alpha"),
    (ADMIN, "beta"),  # not a member: admins may still act in any org
    (SANDBOX_ONLY, None),
    *((user, org) for org, members in ORG_MEMBERS.items() for user in members),
    *((user, None) for members in ORG_MEMBERS.values() for user in members),
]


@pytest.mark.parametrize(("caller", "org"), CASES, ids=[f"{u}@{o or 'sandbox'}" for u, o in CASES])
def test_each_role_exports_exactly_what_it_may_see(
    pipeline: LocalPipeline, caller: str, org: str | None
) -> None:
    client = ExportClient(pipeline.url, httpx.BasicAuth(caller, password(caller)))
    rows = client.export_rows(org=org)
    expected = sorted(e.marker for e in LOGGED if allowed(caller, org)(e))
    assert sorted(row["obj_val"] for row in rows) == expected
    assert expected, "every case should see at least its own events"


@pytest.mark.parametrize(
    ("caller", "org", "parameter"),
    [
        ("wim", "alpha", "X-Organization"),  # a member of beta only
        (SANDBOX_ONLY, "beta", "X-Organization"),
    ],
)
def test_non_members_cannot_export_from_an_org(
    pipeline: LocalPipeline, caller: str, org: str, parameter: str
) -> None:
    client = ExportClient(pipeline.url, httpx.BasicAuth(caller, password(caller)))
    answer = client.get(org=org)
    assert answer.status_code == 403
    assert answer.json()["field"] == parameter


def test_a_worker_cannot_ask_for_a_colleagues_events(pipeline: LocalPipeline) -> None:
    client = ExportClient(pipeline.url, httpx.BasicAuth("wes", password("wes")))
    ann = IdentityStore(pipeline.settings.data_dir).user_by_name("ann")
    assert ann is not None
    answer = client.get(org="alpha", user_id=ann.id)
    assert answer.status_code == 403
    assert answer.json()["field"] == "user_id"
