"""CVAT's own table of permission cases, run against the gateway with every identity source.

The specification is CVAT's, read at run time from its source tree (``CVAT_SOURCE``): the table
``cvat/apps/events/rules/tests/configs/events.csv``, expanded as CVAT's own generator
(``events_test.gen.rego.py``) expands it into every privilege, context and organization role,
and the rules of ``cvat/apps/redis_handler/rules/requests.rego`` for requests. Each case is one
real request to a gateway whose callers are proved by each identity source in turn: CVAT (the
stand-in of tests.integration.cvat_support, answering as CVAT's server does), eventpipe's own
store (password users; it knows only the admin and user privileges) and JWTs (CVAT's groups in
the ``groups`` claim, memberships in ``orgs``). One rule set, whoever vouches for the caller.
CVAT's users also run the table with an access token, which CVAT's access-token plugin
(``access_token_plugin.events.rego``, read likewise) lets do less.

Where eventpipe answers otherwise on purpose, :func:`deliberate_difference` says so, and
docs/cvat-permissions.md says why.
"""

from __future__ import annotations

import base64
import csv
import itertools
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import jwt
import pytest

from eventpipe.export_records import new_status, record_new_export
from eventpipe.identity import ORG_ROLES, IdentityStore, OrgRole, Privilege
from eventpipe.settings import Settings
from eventpipe.stores import FilesystemStore
from eventpipe_cli.embedded_broker import EmbeddedBroker
from tests.conformance.cvat_source import cvat_file
from tests.conftest import isolated_settings
from tests.integration.cvat_support import FakeCvat, running_cvat
from tests.integration.gateway_support import RunningGateway, running_gateway

EVENTS_CSV: Final = "cvat/apps/events/rules/tests/configs/events.csv"
UTILS_REGO: Final = "cvat/apps/iam/rules/utils.rego"
ACCESS_TOKEN_REGO: Final = "cvat/apps/access_tokens/rules/access_token_plugin.events.rego"
SEND, DUMP = "send:events", "dump:events"
SANDBOX, ORGANIZATION = "sandbox", "organization"
# CVAT's generator's orders, highest first; None is no privilege, or no membership.
PRIVILEGES: Final[tuple[Privilege | None, ...]] = ("admin", "user", "worker", None)
ROLES: Final[tuple[OrgRole | None, ...]] = (*reversed(ORG_ROLES), None)
JWT_SECRET: Final = "j" * 32
ORG_SLUG: Final = "acme"


@dataclass(frozen=True)
class Case:
    scope: str
    context: str
    privilege: Privilege | None
    role: OrgRole | None

    def __str__(self) -> str:
        where = self.context if self.role is None else f"{self.context}-{self.role}"
        return f"{self.scope}-{where}-{self.privilege or 'no-privilege'}"


def event_cases(privileges: tuple[Privilege | None, ...]) -> list[Case]:
    """Every case CVAT's generator writes for events.rego (none in the sandbox with a role)."""
    return [
        Case(scope, context, privilege, role)
        for scope, context, privilege, role in itertools.product(
            (SEND, DUMP), (SANDBOX, ORGANIZATION), privileges, ROLES
        )
        if not (context == SANDBOX and role is not None)
    ]


def events_table() -> list[dict[str, str]]:
    with cvat_file(EVENTS_CSV).open(newline="") as table:
        return [
            {key.lower(): value.strip().lower() for key, value in row.items()}
            for row in csv.DictReader(table)
        ]


def _rank(value: str | None, order: tuple[str | None, ...]) -> int:
    return order.index(None if value in (None, "none") else value)


def cvat_allows(case: Case, table: list[dict[str, str]]) -> bool:
    """What CVAT's table says, read as CVAT's generator reads it: an admin may do anything, anyone
    else what a row of the scope allows for at least that privilege and that role."""
    if case.privilege == "admin":
        return True
    return any(
        row["scope"] == case.scope
        and row["context"] in ("n/a", case.context)
        and (
            row["membership"] == "n/a" or _rank(case.role, ROLES) <= _rank(row["membership"], ROLES)
        )
        and _rank(case.privilege, PRIVILEGES) <= _rank(row["privilege"], PRIVILEGES)
        for row in table
    )


def access_token_scopes() -> set[str]:
    """The scopes CVAT's access-token plugin for events allows (its one ``input.scope in {...}``
    rule), by the names utils.rego gives them."""
    constants = dict(re.findall(r'^(\w+) := "([^"]+)"', cvat_file(UTILS_REGO).read_text(), re.M))
    [allowed] = re.findall(r"input\.scope in \{([^}]*)\}", cvat_file(ACCESS_TOKEN_REGO).read_text())
    return {constants[name.strip().removeprefix("utils.")] for name in allowed.split(",")}


def deliberate_difference(case: Case) -> bool:
    """Cases eventpipe refuses where CVAT allows (docs/cvat-permissions.md): posting events into
    an organization one is no member of, which CVAT's send:events rule lets anyone do."""
    return (
        case.scope == SEND
        and case.context == ORGANIZATION
        and case.role is None
        and case.privilege != "admin"
    )


# --- the identity sources ---------------------------------------------------------------------


@dataclass
class Deployment:
    """A gateway and, for each (privilege, role) in its source, a caller's headers."""

    gateway: RunningGateway
    settings: Settings
    org_id: int
    callers: dict[tuple[Privilege | None, OrgRole | None], dict[str, str]] = field(
        default_factory=dict
    )
    user_ids: dict[tuple[Privilege | None, OrgRole | None], int] = field(default_factory=dict)
    # The same users with a CVAT access token (Authorization: Bearer), where the source has them.
    token_callers: dict[tuple[Privilege | None, OrgRole | None], dict[str, str]] = field(
        default_factory=dict
    )

    def queued_request(self, owner: tuple[Privilege | None, OrgRole | None]) -> str:
        """A request of ``owner`` that no exporter takes up (none runs here)."""
        status = new_status(uuid.uuid4(), self.user_ids[owner], "waiting.csv")
        record_new_export(FilesystemStore(self.settings.data_dir / "exports"), status)
        return str(status.query_id)


def _basic(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def _name(privilege: Privilege | None, role: OrgRole | None) -> str:
    return f"{privilege or 'none'}-{role or 'none'}"


def _with_cvat(stack: ExitStack, settings: Settings) -> Deployment:
    server = stack.enter_context(running_cvat(FakeCvat()))
    founder = server.add_user("founder", ["user"])
    org = server.add_org(ORG_SLUG, founder)
    gateway = stack.enter_context(running_gateway(settings.with_overrides(cvat_url=server.url)))
    deployment = Deployment(gateway, settings, org.id)
    for privilege, role in itertools.product(PRIVILEGES, ROLES):
        user = server.add_user(_name(privilege, role), [] if privilege is None else [privilege])
        user.tokens.add(f"token-{user.username}-{uuid.uuid4().hex}")
        if role is not None:
            server.add_member(org, user, role)
        deployment.callers[privilege, role] = {"Authorization": f"Token {next(iter(user.tokens))}"}
        deployment.token_callers[privilege, role] = {
            "Authorization": f"Bearer {user.new_access_token()}"
        }
        deployment.user_ids[privilege, role] = user.id
    return deployment


def _with_store(stack: ExitStack, settings: Settings) -> Deployment:
    with IdentityStore(settings.data_dir) as store:
        org = store.add_org(ORG_SLUG)
        users = {}
        for privilege, role in itertools.product(STORE_PRIVILEGES, ROLES):
            name = _name(privilege, role)
            users[privilege, role] = store.add_user(name, "pw", admin=privilege == "admin")
            if role is not None:
                store.add_member(ORG_SLUG, name, role)
    gateway = stack.enter_context(running_gateway(settings))
    deployment = Deployment(gateway, settings, org.id)
    for key, user in users.items():
        deployment.callers[key] = _basic(user.username, "pw")
        deployment.user_ids[key] = user.id
    return deployment


def _with_jwt(stack: ExitStack, settings: Settings) -> Deployment:
    settings = settings.with_overrides(jwt_hs256_secret=JWT_SECRET)
    with IdentityStore(settings.data_dir) as store:
        # Only an admin outside its claimed orgs has the organization looked up here.
        org = store.add_org(ORG_SLUG)
    gateway = stack.enter_context(running_gateway(settings))
    deployment = Deployment(gateway, settings, org.id)
    for number, (privilege, role) in enumerate(itertools.product(PRIVILEGES, ROLES), 1000):
        claims: dict[str, Any] = {
            "user_id": number,
            "preferred_username": _name(privilege, role),
            "groups": [] if privilege is None else [privilege],
            "orgs": [] if role is None else [{"id": org.id, "slug": ORG_SLUG, "role": role}],
            "exp": int(time.time()) + 3600,
        }
        token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
        deployment.callers[privilege, role] = {"Authorization": f"Bearer {token}"}
        deployment.user_ids[privilege, role] = number
    return deployment


SOURCES: Final = {"cvat": _with_cvat, "store": _with_store, "jwt": _with_jwt}
# The privileges each source can give a caller: the store grants admin or user only.
STORE_PRIVILEGES: Final[tuple[Privilege | None, ...]] = ("admin", "user")
SOURCE_PRIVILEGES: Final = {"cvat": PRIVILEGES, "store": STORE_PRIVILEGES, "jwt": PRIVILEGES}


@pytest.fixture(scope="module")
def deployments(
    tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker
) -> Iterator[dict[str, Deployment]]:
    with ExitStack() as stack:
        yield {
            name: build(stack, isolated_settings(tmp_path_factory.mktemp(name) / "data", broker))
            for name, build in SOURCES.items()
        }


def _params() -> list[Any]:
    return [
        pytest.param(source, case, id=f"{source}-{case}")
        for source, privileges in SOURCE_PRIVILEGES.items()
        for case in event_cases(privileges)
    ]


def _batch() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"events": [{"scope": "click:element", "timestamp": now}], "timestamp": now}


def test_the_table_has_the_scopes_these_cases_cover() -> None:
    """A scope CVAT adds to its table would have no case here: fail rather than miss it."""
    assert {row["scope"] for row in events_table()} == {SEND, DUMP}


def test_the_access_token_plugin_allows_exporting_and_downloading_only() -> None:
    assert access_token_scopes() == {DUMP, "download:exported_file"}


@pytest.mark.parametrize(("source", "case"), _params())
def test_cvats_events_table(deployments: dict[str, Deployment], source: str, case: Case) -> None:
    deployment = deployments[source]
    allowed = cvat_allows(case, events_table()) and not deliberate_difference(case)
    _check_case(deployment, deployment.callers[case.privilege, case.role], case, allowed)


@pytest.mark.parametrize("case", event_cases(PRIVILEGES), ids=str)
def test_cvats_events_table_with_an_access_token(
    deployments: dict[str, Deployment], case: Case
) -> None:
    """A CVAT access token: the events rules and the access-token plugin must both allow."""
    deployment = deployments["cvat"]
    allowed = (
        cvat_allows(case, events_table())
        and not deliberate_difference(case)
        and case.scope in access_token_scopes()
    )
    _check_case(deployment, deployment.token_callers[case.privilege, case.role], case, allowed)


def _check_case(deployment: Deployment, caller: dict[str, str], case: Case, allowed: bool) -> None:
    headers = dict(caller)
    if case.context == ORGANIZATION:
        headers["X-Organization"] = ORG_SLUG
    url = deployment.gateway.url
    if case.scope == SEND:
        answers = [httpx.post(f"{url}/api/events", json=_batch(), headers=headers)]
        expected = 201
    else:
        # events.csv's GET /events, and the export CVAT's permission class maps to the same scope.
        answers = [
            httpx.get(f"{url}/api/events", headers=headers),
            httpx.post(f"{url}/api/events/export", headers=headers),
        ]
        expected = 202
    for answer in answers:
        assert answer.status_code == (expected if allowed else 403), (
            answer.request.method,
            answer.request.url.path,
            answer.text,
        )


REQUEST_ACTIONS: Final = {
    # action: (method, path template, answer when allowed)
    "view": ("GET", "/api/requests/{rq_id}", 200),
    "cancel": ("POST", "/api/requests/{rq_id}/cancel", 200),
    # Allowed, but the request has not finished: CVAT's 400.
    "download": ("GET", "/api/events/download?rq_id={rq_id}", 400),
}


@pytest.mark.parametrize("action", list(REQUEST_ACTIONS))
@pytest.mark.parametrize("owned", [True, False], ids=["own", "another-users"])
@pytest.mark.parametrize(
    ("source", "privilege"),
    [(s, p) for s, privileges in SOURCE_PRIVILEGES.items() for p in privileges],
)
def test_requests_rules(
    deployments: dict[str, Deployment],
    source: str,
    privilege: Privilege | None,
    owned: bool,
    action: str,
) -> None:
    """requests.rego: an admin may do anything to any request, anyone else only to their own;
    events.rego's download:exported_file likewise."""
    deployment = deployments[source]
    caller = (privilege, None)
    owner = caller if owned else ("user", "owner")
    rq_id = deployment.queued_request(owner)
    method, path, allowed_status = REQUEST_ACTIONS[action]
    answer = httpx.request(
        method,
        deployment.gateway.url + path.format(rq_id=rq_id),
        headers=deployment.callers[caller],
    )
    allowed = privilege == "admin" or owned
    assert answer.status_code == (allowed_status if allowed else 403), answer.text
