"""CVAT's current export flow against the whole pipeline (worker and gateway processes, a real
broker, chDB, the filesystem store): ``POST /api/events/export``, ``/api/requests`` and the
download at ``result_url``; and the deprecated flow's ``Deprecation`` header."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from eventpipe.export_records import new_status, record_new_export
from eventpipe.identity import IdentityStore
from eventpipe.stores import FilesystemStore
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
from tests.integration.metrics_support import scrape, value
from tests.integration.openapi_support import check_against_schema

NOW = datetime.now(UTC)
ROOT = httpx.BasicAuth("root", "root-pw")
# CVAT's Deprecation header on the query_id flow (RFC 9745: the Unix time of 2025-03-17).
DEPRECATION = "@1742169600"


@dataclass
class Stack:
    pipeline: LocalPipeline
    user_ids: dict[str, int]
    acme_id: int

    def client(self, auth: httpx.BasicAuth) -> ExportClient:
        return ExportClient(self.pipeline.url, auth)

    def queued_request(self, owner: str) -> str:
        """An export recorded as queued that no exporter has taken (none was asked to)."""
        store = FilesystemStore(self.pipeline.settings.data_dir / "exports")
        status = new_status(uuid.uuid4(), self.user_ids[owner], "waiting.csv")
        record_new_export(store, status)
        return rq_id_of(status.query_id, self.user_ids[owner])


def rq_id_of(query_id: uuid.UUID, owner: int) -> str:
    """CVAT's rq_id of an events export, as its ExportRequestId renders it."""
    return f"action=export&target=events&id={query_id}&user_id={owner}"


def query_id_of(rq_id: str) -> uuid.UUID:
    return uuid.UUID(dict(parse_qsl(rq_id))["id"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("export-requests")
    settings = pipeline_settings(root / "data", broker)
    identity = IdentityStore(settings.data_dir)
    users = {name: identity.add_user(name, f"{name}-pw").id for name in ("alice", "bob")}
    users["root"] = identity.add_user("root", "root-pw", admin=True).id
    acme = identity.add_org("acme")
    identity.add_member("acme", "alice", "owner")
    with LocalPipeline.run(settings, root / "pipeline.log") as pipeline:
        post_events(
            pipeline.url,
            ALICE,
            [event("load:job", NOW - timedelta(minutes=5), obj_val="a1", job_id=1, task_id=10)],
        )
        post_events(pipeline.url, ALICE, [event("click:element", NOW, obj_val="a2")], "acme")
        post_events(pipeline.url, BOB, [event("click:element", NOW, obj_val="b1")])
        pipeline.wait_until_stored(60)
        yield Stack(pipeline, users, acme.id)


def test_a_request_describes_its_export_and_its_result_url_serves_the_file(stack: Stack) -> None:
    alice = stack.client(ALICE)
    started = datetime.now(UTC)
    rq_id = alice.start_request(task_id=10, filename="../tasks/\r\nten.csv")
    request = alice.wait_until_request_ended(rq_id)

    assert rq_id == rq_id_of(query_id_of(rq_id), stack.user_ids["alice"])
    assert request["status"] == "finished" and request["message"] == ""
    assert request["id"] == rq_id and request["progress"] == 1.0 and request["result_id"] is None
    assert request["owner"] == {"id": stack.user_ids["alice"], "username": "alice"}
    # CVAT records no ids for an events export, whatever it filters on; every field is sent.
    assert request["operation"] == {
        "type": "export:events",
        "target": "events",
        "org_id": None,
        "project_id": None,
        "task_id": None,
        "job_id": None,
        "format": None,
        "lightweight": None,
    }
    dates = [
        datetime.fromisoformat(request[name])
        for name in ("created_date", "started_date", "finished_date", "expiry_date")
    ]
    assert started <= dates[0] <= dates[1] <= dates[2] < dates[3]
    assert request["result_url"] == (
        f"{stack.pipeline.url}/api/events/download?{urlencode({'rq_id': rq_id})}"
    )

    download = httpx.get(request["result_url"], auth=ALICE)
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"] == 'attachment; filename="tasksten.csv"'
    assert int(download.headers["content-length"]) == len(download.content)
    assert [row["obj_val"] for row in csv_rows(download)] == ["a1"]
    assert "deprecation" not in download.headers
    # The finished request, its file and a list holding it, as /api/schema documents them.
    document = httpx.get(f"{stack.pipeline.url}/api/schema").json()
    check_against_schema(document, "GET", alice.requests(f"/{rq_id}"), "/api/requests/{id}")
    check_against_schema(document, "GET", alice.requests(status="finished"))
    check_against_schema(document, "GET", download)

    # The same export through the deprecated flow: its query_id is the rq_id's id.
    old = alice.get(query_id=query_id_of(rq_id))
    assert (old.status_code, old.headers["deprecation"]) == (201, DEPRECATION)
    assert alice.download(query_id_of(rq_id)).content == download.content
    # The bare id, which rq_ids were before they took CVAT's form, still names the request.
    assert alice.requests(f"/{query_id_of(rq_id)}").json()["id"] == rq_id

    # Requests for any id count under one route label.
    samples = scrape(stack.pipeline.metrics_url)
    route = {"method": "GET", "route": "/api/requests/{id}", "status": "200"}
    assert value(samples, "eventpipe_http_requests_total", **route) >= 1


def test_the_deprecated_flow_says_so_in_cvats_header(stack: Stack) -> None:
    alice = stack.client(ALICE)
    started = alice.get(job_id=1)
    assert (started.status_code, started.headers["deprecation"]) == (202, DEPRECATION)
    ended = alice.wait_until_ended(uuid.UUID(started.json()["query_id"]))
    assert ended.headers["deprecation"] == DEPRECATION
    assert "deprecation" not in alice.post_export(job_id=1).headers


def test_an_org_owner_exports_the_org_through_the_requests_api(stack: Stack) -> None:
    alice = stack.client(ALICE)
    rq_id = alice.start_request(org="acme")
    request = alice.wait_until_request_ended(rq_id)
    rows = csv_rows(httpx.get(request["result_url"], auth=ALICE))
    assert [row["obj_val"] for row in rows] == ["a2"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"location": "cloud_storage"}, "location"),
        ({"location": "elsewhere"}, "location"),
        ({"cloud_storage_id": "3"}, "cloud_storage_id"),
        ({"location": "local", "cloud_storage_id": "3"}, "cloud_storage_id"),
        ({"user_id": "-1"}, "user_id"),
        ({"job_id": "x"}, "job_id"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-31T23:59:59Z"}, "from"),
    ],
)
def test_bad_export_parameters_are_refused_by_name(
    stack: Stack, params: dict[str, str], field: str
) -> None:
    answer = stack.client(ALICE).post_export(**params)
    assert (answer.status_code, answer.json()["field"]) == (400, field), answer.text


def test_location_local_is_this_services_own_store(stack: Stack) -> None:
    alice = stack.client(ALICE)
    rq_id = alice.start_request(location="local", job_id=1)
    assert alice.wait_until_request_ended(rq_id)["status"] == "finished"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"page_size": "-5"}, "page_size"),
        ({"status": "running"}, "status"),
        ({"job_id": "x"}, "job_id"),
        ({"sort": "owner"}, "sort"),
        ({"filter": "{"}, "filter"),
        ({"filter": '{"var": "owner"}'}, "filter"),
        ({"filter": '{"==": [{"var": "status"}]}'}, "filter"),
        ({"filter": '{"regex": [{"var": "status"}, "f.*"]}'}, "filter"),
    ],
)
def test_bad_list_parameters_are_refused_by_name(
    stack: Stack, params: dict[str, str], field: str
) -> None:
    answer = stack.client(ALICE).requests(**params)
    assert (answer.status_code, answer.json()["field"]) == (400, field), answer.text


def test_the_list_holds_only_the_callers_requests_newest_first_page_by_page(
    stack: Stack,
) -> None:
    bob = stack.client(BOB)
    mine = [bob.start_request(job_id=n) for n in range(3)]
    for rq_id in mine:
        bob.wait_until_request_ended(rq_id)
    waiting = stack.queued_request("bob")

    first = bob.requests(page_size=2).json()
    assert first["count"] == 4 and first["previous"] is None
    second = httpx.get(first["next"], auth=BOB).json()
    assert second["next"] is None and second["previous"] is not None
    back = httpx.get(second["previous"], auth=BOB).json()
    assert back == first
    listed = [r["id"] for r in first["results"] + second["results"]]
    assert listed == [waiting, *reversed(mine)]

    finished = bob.requests(status="finished").json()
    assert [r["id"] for r in finished["results"]] == list(reversed(mine))
    assert [r["id"] for r in bob.requests(status="queued").json()["results"]] == [waiting]
    for other in (
        {"target": "task"},
        {"action": "import"},
        {"status": "failed"},
        {"job_id": 1},
        {"format": "CSV"},
        {"org": "acme"},
        {"filter": '{"==": [{"var": "status"}, "failed"]}'},
    ):
        assert bob.requests(**other).json() == {
            "count": 0,
            "next": None,
            "previous": None,
            "results": [],
        }
    # The web client sends org= in the sandbox: an empty filter filters nothing.
    assert bob.requests(org="", page_size=100).json()["count"] == 4
    logic = (
        '{"and": [{"==": [{"var": "target"}, "events"]}, {"!=": [{"var": "status"}, "queued"]}]}'
    )
    assert [r["id"] for r in bob.requests(filter=logic).json()["results"]] == list(reversed(mine))
    oldest_first = bob.requests(sort="created_date", page_size=100).json()["results"]
    assert [r["id"] for r in oldest_first] == [*mine, waiting]
    by_status = bob.requests(sort="-status,created_date", page_size=100).json()["results"]
    assert [r["id"] for r in by_status] == [waiting, *mine]
    assert bob.requests(page=3, page_size=2).status_code == 404
    # Alice's requests are not Bob's.
    alices = {r["id"] for r in stack.client(ALICE).requests(page_size=100).json()["results"]}
    assert alices and not alices & {*mine, waiting}


def test_someone_elses_request_is_403_and_an_admin_reaches_anyones(stack: Stack) -> None:
    alice, bob, root = stack.client(ALICE), stack.client(BOB), stack.client(ROOT)
    rq_id = alice.start_request(job_id=1)
    assert alice.wait_until_request_ended(rq_id)["status"] == "finished"
    queued = stack.queued_request("alice")

    unknown = bob.requests(f"/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["field"] == "id"
    for answer in (
        bob.requests("/not-an-id"),
        bob.requests("/action=export&target=events/cancel", method="POST"),
        # Alice's request under another owner's id names nothing.
        bob.requests(f"/{rq_id_of(query_id_of(rq_id), stack.user_ids['bob'])}"),
    ):
        assert (answer.status_code, answer.json()) == (404, unknown.json())
    download = f"{stack.pipeline.url}/api/events/download"
    for answer in (
        bob.requests(f"/{rq_id}"),
        bob.requests(f"/{queued}/cancel", method="POST"),
        httpx.get(download, params={"rq_id": rq_id}, auth=BOB),
    ):
        assert answer.status_code == 403 and "another user" in answer.json()["error"]
    # Bob's attempt changed nothing, and his list does not hold hers.
    assert alice.requests(f"/{queued}").json()["status"] == "queued"
    assert rq_id not in {r["id"] for r in bob.requests(page_size=100).json()["results"]}

    # An admin sees, downloads and cancels anyone's, but lists only his own, as in CVAT.
    seen = root.requests(f"/{rq_id}").json()
    assert seen["owner"] == {"id": stack.user_ids["alice"], "username": "alice"}
    assert httpx.get(download, params={"rq_id": rq_id}, auth=ROOT).status_code == 200
    assert root.requests(f"/{queued}/cancel", method="POST").status_code == 200
    assert alice.requests(f"/{queued}").status_code == 404
    assert root.requests(page_size=100).json()["count"] == 0


def test_cancel_deletes_a_queued_request_and_refuses_an_ended_one(stack: Stack) -> None:
    alice = stack.client(ALICE)
    queued = stack.queued_request("alice")
    cancelled = alice.requests(f"/{queued}/cancel", method="POST")
    assert (cancelled.status_code, cancelled.content) == (200, b"")
    for answer in (
        alice.requests(f"/{queued}"),
        alice.requests(f"/{queued}/cancel", method="POST"),
    ):
        assert answer.status_code == 404
    # The deprecated flow starts an export for an id it does not know, never under this one.
    restarted = alice.get(query_id=query_id_of(queued))
    assert restarted.status_code == 202
    assert restarted.json()["query_id"] != str(query_id_of(queued))
    assert queued not in {r["id"] for r in alice.requests(page_size=100).json()["results"]}

    rq_id = alice.start_request(job_id=1)
    alice.wait_until_request_ended(rq_id)
    refused = alice.requests(f"/{rq_id}/cancel", method="POST")
    assert (refused.status_code, refused.json()["field"]) == (400, "id")
    assert alice.requests(f"/{rq_id}").json()["status"] == "finished"


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({}, 400, "rq_id"),
        ({"rq_id": "nope"}, 400, "rq_id"),
        ({"rq_id": rq_id_of(uuid.uuid4(), 1)}, 400, "rq_id"),
    ],
)
def test_a_download_needs_a_known_rq_id(
    stack: Stack, params: dict[str, Any], status: int, field: str
) -> None:
    answer = httpx.get(f"{stack.pipeline.url}/api/events/download", params=params, auth=ALICE)
    assert (answer.status_code, answer.json()["field"]) == (status, field)


def test_an_unfinished_request_has_no_file_yet(stack: Stack) -> None:
    queued = stack.queued_request("alice")
    answer = httpx.get(
        f"{stack.pipeline.url}/api/events/download", params={"rq_id": queued}, auth=ALICE
    )
    assert (answer.status_code, answer.json()["field"]) == (400, "rq_id")
    assert "queued" in answer.json()["error"]


# A fixed id: test ids must be the same in every process that collects them (pytest-xdist).
SOME_ID = "0b7e6b0e-5a0c-4c39-9d4e-2f8f4a3d1c11"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/events/export"),
        ("GET", "/api/requests"),
        ("GET", f"/api/requests/{SOME_ID}"),
        ("POST", f"/api/requests/{SOME_ID}/cancel"),
        ("GET", f"/api/events/download?rq_id={SOME_ID}"),
    ],
)
def test_every_new_endpoint_needs_credentials(stack: Stack, method: str, path: str) -> None:
    answer = httpx.request(method, f"{stack.pipeline.url}{path}")
    assert answer.status_code == 401 and "www-authenticate" in answer.headers
