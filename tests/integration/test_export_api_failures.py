"""GET /api/events when exports fail, expire, or cannot be started: real worker, gateway, broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import EmbeddedBroker, free_port
from eventpipe_cli.testing.pipeline import LocalPipeline
from tests.integration.export_api_support import (
    ExportClient,
    event,
    pipeline_settings,
    post_events,
)
from tests.integration.gateway_support import running_gateway
from tests.integration.openapi_support import check_against_schema

TTL_SECONDS = 5
# How long past its expiry an export may still be served: the gateway checks the time itself, so
# only the polling interval and a busy machine delay the 404.
EXPIRY_GRACE = timedelta(seconds=10)
ALICE = httpx.BasicAuth("alice", "alice-pw")


@dataclass
class FailingStack:
    pipeline: LocalPipeline
    # Started before any exporter ran, with its file's place in the store taken by a directory.
    doomed: uuid.UUID

    @property
    def alice(self) -> ExportClient:
        return ExportClient(self.pipeline.url, ALICE)


def add_alice(settings: Settings) -> None:
    IdentityStore(settings.data_dir).add_user("alice", "alice-pw")


@pytest.fixture(scope="module")
def failing(
    tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker
) -> Iterator[FailingStack]:
    root = tmp_path_factory.mktemp("export-failures")
    settings = pipeline_settings(root / "data", broker)
    add_alice(settings)
    # A gateway of its own takes the doomed export while no exporter runs yet, so the directory
    # is in place before any exporter can publish the file.
    with running_gateway(settings) as early:
        doomed = ExportClient(early.url, ALICE).start()
    (settings.data_dir / "exports" / "exports" / f"{doomed}.csv").mkdir(parents=True)
    with LocalPipeline.run(settings, root / "pipeline.log") as pipeline:
        yield FailingStack(pipeline, doomed)


@pytest.fixture(scope="module")
def short_lived(
    tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker
) -> Iterator[ExportClient]:
    """A pipeline whose exports expire after TTL_SECONDS, with its worker running.

    The exporter's sweeper also fails exports queued for longer than the TTL, so no export may
    wait for a worker that is still starting: one stored event shows the worker is up.
    """
    root = tmp_path_factory.mktemp("export-expiry")
    settings = pipeline_settings(root / "data", broker, export_ttl_seconds=TTL_SECONDS)
    add_alice(settings)
    with LocalPipeline.run(settings, root / "pipeline.log") as pipeline:
        post_events(pipeline.url, ALICE, [event("load:job", datetime.now(UTC))])
        pipeline.wait_until_stored(60)
        yield ExportClient(pipeline.url, ALICE)


def test_a_failed_export_answers_500_with_the_reason(failing: FailingStack) -> None:
    failed = failing.alice.wait_until_ended(failing.doomed)

    assert failed.status_code == 500
    body = failed.json()
    assert (body["query_id"], body["status"]) == (str(failing.doomed), "failed")
    assert "Is a directory" in body["error"]
    # Asking for the file of a failed export answers what a poll answers.
    assert failing.alice.download(failing.doomed).json() == body

    # The requests API reports the same failure, with the reason as its message.
    request = failing.alice.wait_until_request_ended(str(failing.doomed))
    assert (request["status"], request["message"]) == ("failed", body["error"])
    assert request["result_url"] is None and request["progress"] == 0.0
    assert request["finished_date"] is not None and request["expiry_date"] is not None
    no_file = httpx.get(
        f"{failing.pipeline.url}/api/events/download",
        params={"rq_id": str(failing.doomed)},
        auth=ALICE,
    )
    assert (no_file.status_code, no_file.json()["field"]) == (400, "rq_id")
    failed_list = failing.alice.requests(status="failed")
    assert [r["id"] for r in failed_list.json()["results"]] == [request["id"]]
    document = httpx.get(f"{failing.pipeline.url}/api/schema").json()
    check_against_schema(document, "GET", failed_list)
    check_against_schema(document, "GET", failed)


def poll_until_gone(
    ask: Callable[[], httpx.Response], expires_at: datetime, gone: int = 404
) -> httpx.Response:
    """Ask until the answer is ``gone``: not before ``expires_at``, and within seconds after it."""
    while (answer := ask()).status_code != gone:
        assert answer.status_code in (200, 201), answer.text
        assert datetime.now(UTC) < expires_at + EXPIRY_GRACE, "still served after it expired"
        time.sleep(0.1)
    assert datetime.now(UTC) >= expires_at, "gone before it expired"
    return answer


def test_an_expired_export_is_gone(short_lived: ExportClient) -> None:
    alice = short_lived
    query_id = alice.start()
    ready = alice.wait_until_ended(query_id)
    assert ready.status_code == 201
    assert alice.download(query_id).status_code == 200

    expires_at = datetime.fromisoformat(ready.json()["expires_at"])
    # An expired id names no export any more: as in CVAT, asking for it starts a new one, under
    # a new id while the expired record is still kept.
    restarted = poll_until_gone(lambda: alice.get(query_id=str(query_id)), expires_at, gone=202)
    assert restarted.json()["query_id"] != str(query_id)


def test_an_expired_request_is_gone(short_lived: ExportClient) -> None:
    alice = short_lived
    rq_id = alice.start_request()
    request = alice.wait_until_request_ended(rq_id)
    assert httpx.get(request["result_url"], auth=ALICE).status_code == 200

    expiry = datetime.fromisoformat(request["expiry_date"])
    poll_until_gone(lambda: alice.requests(f"/{rq_id}"), expiry)
    assert httpx.get(request["result_url"], auth=ALICE).status_code == 400
    assert rq_id not in {r["id"] for r in alice.requests().json()["results"]}


def test_starting_an_export_without_a_broker_answers_503(
    settings: Settings, tmp_path: Path
) -> None:
    no_broker = settings.with_overrides(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    add_alice(no_broker)
    with running_gateway(no_broker, wait_ready=False) as gateway:
        answer = ExportClient(gateway.url, ALICE).get()
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
