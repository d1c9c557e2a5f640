"""Both export flows against the whole pipeline: ``eventpipe worker --role all`` and ``eventpipe
gateway`` as processes, a real broker, chDB, exports in the filesystem store.

One pipeline serves the module. Its events go in through POST /api/events and are in ClickHouse
before any test starts; each event is told apart by its ``obj_val``. The permission rules are
checked through both ways of starting an export: ``GET /api/events`` (deprecated) and
``POST /api/events/export``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from eventpipe.events_table import EXPORT_COLUMNS
from eventpipe.identity import IdentityStore, Org
from eventpipe_cli.embedded_broker import EmbeddedBroker
from eventpipe_cli.testing.pipeline import LocalPipeline
from tests.integration.export_api_support import (
    ALICE,
    BOB,
    ExportClient,
    csv_rows,
    event,
    pipeline_settings,
    post_events,
)

NOW = datetime.now(UTC)
WORKING_TIME = "send:working_time"
CAROL = httpx.BasicAuth("carol", "carol-pw")
ROOT = httpx.BasicAuth("root", "root-pw")


@dataclass
class Stack:
    pipeline: LocalPipeline
    acme: Org
    globex: Org
    user_ids: dict[str, int]

    def client(self, auth: httpx.BasicAuth) -> ExportClient:
        return ExportClient(self.pipeline.url, auth)

    @property
    def store_root(self) -> Path:
        return self.pipeline.settings.data_dir / "exports"


def posted_requests() -> list[tuple[httpx.BasicAuth, str | None, list[dict[str, Any]]]]:
    """(who, in which org, which events) of every request the module's pipeline is fed."""

    def ago(minutes: float) -> datetime:
        return NOW - timedelta(minutes=minutes)

    job_1 = {"job_id": 1, "task_id": 10, "project_id": 100}
    in_acme = {"task_id": 20, "project_id": 200}
    click = "click:element"
    return [
        # Two events 5 s apart: the pipeline adds 5 s of working time on job 1.
        (
            ALICE,
            None,
            [
                event("load:job", ago(120), obj_val="alice-sandbox-1", **job_1),
                event("save:job", ago(120 - 5 / 60), obj_val="alice-sandbox-2", **job_1),
            ],
        ),
        (ALICE, None, [event("debug:info", ago(40 * 24 * 60), obj_val="alice-old")]),
        (ALICE, "acme", [event(click, ago(60), obj_val="alice-acme", job_id=2, **in_acme)]),
        (BOB, "acme", [event(click, ago(50), obj_val="bob-acme", job_id=3, **in_acme)]),
        (BOB, None, [event(click, ago(40), obj_val="bob-sandbox", job_id=5, task_id=50)]),
        (CAROL, "globex", [event(click, ago(30), obj_val="carol-globex", job_id=4)]),
    ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("export-api")
    settings = pipeline_settings(root / "data", broker)
    identity = IdentityStore(settings.data_dir)
    users = {
        name: identity.add_user(name, f"{name}-pw", admin=name == "root").id
        for name in ("alice", "bob", "carol", "root")
    }
    acme, globex = identity.add_org("acme"), identity.add_org("globex")
    identity.add_member("acme", "alice", "owner")
    identity.add_member("acme", "bob", "worker")
    identity.add_member("globex", "carol", "owner")

    with LocalPipeline.run(settings, root / "pipeline.log") as pipeline:
        for auth, org, events in posted_requests():
            post_events(pipeline.url, auth, events, org)
        pipeline.wait_until_stored(60)
        yield Stack(pipeline, acme, globex, users)


# How each flow starts an export (the raw answer) and runs one to its CSV rows.
Start = Callable[[ExportClient], Callable[..., httpx.Response]]
Rows = Callable[[ExportClient], Callable[..., list[dict[str, str]]]]
FLOWS: dict[str, tuple[Start, Rows]] = {
    "query_id": (lambda c: c.get, lambda c: c.export_rows),
    "requests": (lambda c: c.post_export, lambda c: c.export_rows_by_request),
}


@pytest.fixture(params=list(FLOWS))
def flow(request: pytest.FixtureRequest) -> tuple[Start, Rows]:
    return FLOWS[request.param]


def labels(rows: list[dict[str, str]]) -> set[str]:
    """Each row's ``obj_val``, or its scope for the derived working-time rows (they have none)."""
    return {row["obj_val"] or row["scope"] for row in rows}


def test_a_user_exports_their_own_events_of_the_last_30_days(stack: Stack) -> None:
    alice = stack.client(ALICE)
    query_id = alice.start()
    ended = alice.wait_until_ended(query_id)

    assert ended.status_code == 201
    body = ended.json()
    assert (body["query_id"], body["status"], body["rows"]) == (str(query_id), "finished", 4)
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)
    # The filesystem store has no presigned links: the URL is the gateway's own download.
    assert body["url"] == f"{stack.pipeline.url}/api/events?query_id={query_id}&action=download"

    download = httpx.get(body["url"], auth=ALICE)
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="logs_\d{4}(_\d\d){5}\.csv"', download.headers["content-disposition"]
    )
    assert int(download.headers["content-length"]) == body["size"] == len(download.content)
    assert download.text.splitlines()[0].split(",")[: len(EXPORT_COLUMNS)] == list(EXPORT_COLUMNS)
    rows = csv_rows(download)
    # Her events in any org context; not the one from 40 days ago, nobody else's.
    assert labels(rows) == {"alice-sandbox-1", "alice-sandbox-2", WORKING_TIME, "alice-acme"}
    assert [row["timestamp"] for row in rows] == sorted(row["timestamp"] for row in rows)
    [working_time] = [row for row in rows if row["scope"] == WORKING_TIME]
    assert (working_time["duration"], working_time["job_id"]) == ("5000", "1")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"user_id": "bob"}, {"bob-acme", "bob-sandbox"}),
        ({"org_id": "acme"}, {"alice-acme", "bob-acme"}),
        ({"project_id": 200}, {"alice-acme", "bob-acme"}),
        ({"task_id": 10}, {"alice-sandbox-1", "alice-sandbox-2", WORKING_TIME}),
        ({"job_id": 5}, {"bob-sandbox"}),
        (
            {
                "from": (NOW - timedelta(days=41)).isoformat(),
                "to": (NOW - timedelta(days=39)).isoformat(),
            },
            {"alice-old"},
        ),
        # Only `from`: until now. Only `to`: everything before it.
        ({"from": (NOW - timedelta(minutes=45)).isoformat()}, {"bob-sandbox", "carol-globex"}),
        ({"to": (NOW - timedelta(days=30)).isoformat()}, {"alice-old"}),
        ({"project_id": 200, "job_id": 3}, {"bob-acme"}),
    ],
)
def test_each_filter_narrows_an_admins_export(
    stack: Stack, flow: tuple[Start, Rows], params: dict[str, Any], expected: set[str]
) -> None:
    # Users and orgs are named in the table; their ids exist only once the stack does.
    names = {"user_id": stack.user_ids, "org_id": {"acme": stack.acme.id}}
    query: dict[str, Any] = {
        key: names[key][value] if key in names else value for key, value in params.items()
    }
    _, rows = flow
    assert labels(rows(stack.client(ROOT))(**query)) == expected


def test_an_org_worker_sees_only_their_own_events_there(
    stack: Stack, flow: tuple[Start, Rows]
) -> None:
    _, rows = flow
    assert labels(rows(stack.client(BOB))(org="acme")) == {"bob-acme"}


def test_an_org_owner_sees_the_whole_org(stack: Stack, flow: tuple[Start, Rows]) -> None:
    _, rows = flow
    assert labels(rows(stack.client(ALICE))(org_id=stack.acme.id)) == {"alice-acme", "bob-acme"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"user_id": "-1"}, "user_id"),
        ({"org_id": "-3"}, "org_id"),
        ({"job_id": "x"}, "job_id"),
        ({"project_id": "1.5"}, "project_id"),
        ({"task_id": str(2**64)}, "task_id"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-31T23:59:59Z"}, "from"),
        ({"action": "delete"}, "action"),
        ({"query_id": "not-a-uuid"}, "query_id"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    stack: Stack, params: dict[str, str], field: str
) -> None:
    answer = stack.client(ALICE).get(**params)
    assert answer.status_code == 400
    assert answer.json()["field"] == field


@pytest.mark.parametrize("auth", [None, httpx.BasicAuth("alice", "wrong")])
def test_unauthenticated_callers_get_401(stack: Stack, auth: httpx.BasicAuth | None) -> None:
    answer = httpx.get(f"{stack.pipeline.url}/api/events", auth=auth)
    assert answer.status_code == 401
    assert "www-authenticate" in answer.headers


def test_forbidden_exports_are_refused_by_parameter(stack: Stack, flow: tuple[Start, Rows]) -> None:
    start, _ = flow
    alice, bob = start(stack.client(ALICE)), start(stack.client(BOB))
    not_member = alice(org="globex")
    assert (not_member.status_code, not_member.json()["field"]) == (403, "X-Organization")
    by_id = alice(org_id=stack.globex.id)
    assert (by_id.status_code, by_id.json()["field"]) == (403, "org_id")
    someone_else = bob(org="acme", user_id=stack.user_ids["alice"])
    assert (someone_else.status_code, someone_else.json()["field"]) == (403, "user_id")
    in_sandbox = alice(user_id=stack.user_ids["bob"])
    assert (in_sandbox.status_code, in_sandbox.json()["field"]) == (403, "user_id")


def test_an_export_exists_only_for_the_user_who_started_it(stack: Stack) -> None:
    """As in CVAT's deprecated flow, an id naming none of the caller's exports starts one: under
    that id when it is free, under a new one when someone else's export holds it."""
    alice, bob = stack.client(ALICE), stack.client(BOB)
    query_id = alice.start(job_id=1)
    assert alice.wait_until_ended(query_id).status_code == 201

    free = uuid.uuid4()
    unknown = bob.get(query_id=str(free))
    assert (unknown.status_code, unknown.json()) == (202, {"query_id": str(free)})
    assert bob.wait_until_ended(free).status_code == 201
    for answer in (bob.get(query_id=str(query_id)), bob.download(query_id)):
        assert answer.status_code == 202
        assert answer.json()["query_id"] not in (str(query_id), str(free))
    assert alice.download(query_id).status_code == 200
    # Bob's exports are his own: none of Alice's events.
    assert {row["user_name"] for row in csv_rows(bob.download(free))} <= {"bob"}


def test_the_download_names_a_safe_file(stack: Stack) -> None:
    alice = stack.client(ALICE)
    injection = '../../etc/"evil"\r\nSet-Cookie: pwned=1\x00\u202e.csv'
    query_id = alice.start(job_id=1, filename=injection)
    assert alice.wait_until_ended(query_id).status_code == 201

    download = alice.download(query_id)
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        'attachment; filename="etcevilSet-Cookie: pwned=1.csv"'
    )
    assert "set-cookie" not in download.headers
    # A name given with the download wins; a name that is not ASCII also goes as RFC 5987.
    renamed = alice.download(query_id, filename="отчёт 2026.csv")
    assert renamed.headers["content-disposition"] == (
        'attachment; filename="_____ 2026.csv"; '
        f"filename*=UTF-8''{quote('отчёт 2026.csv', safe='')}"
    )
    assert renamed.content == download.content


def test_an_unreadable_store_answers_503(stack: Stack) -> None:
    query_id = uuid.uuid4()
    # A directory where the export's status record belongs: reading it fails, like a dead disk.
    (stack.store_root / "exports" / f"{query_id}.json").mkdir(parents=True)
    answer = stack.client(ALICE).get(query_id=str(query_id))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
