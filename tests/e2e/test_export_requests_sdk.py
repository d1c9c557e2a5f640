"""The unchanged cvat-sdk client runs CVAT's current export flow as a CVAT client does:
``events_api.create_export`` → ``requests_api.retrieve`` until finished → download ``result_url``
with the same credentials (as the SDK's own downloader does); plus ``requests_api.list`` and
``requests_api.create_cancel``. Every answer is parsed and type-checked by the SDK's models."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from cvat_sdk.api_client import ApiClient, Configuration, exceptions, models
from cvat_sdk.core.helpers import make_request_headers

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.testing.pipeline import LocalPipeline
from tests.integration.gateway_support import running_gateway

pytestmark = pytest.mark.slow


def sdk_client(url: str) -> ApiClient:
    return ApiClient(Configuration(host=url, username="alice", password="alice-pw"))


def wait_until_finished(client: ApiClient, rq_id: str) -> models.Request:
    deadline = time.monotonic() + 60
    while True:
        request, _ = client.requests_api.retrieve(rq_id)
        if request.status.value == "finished":
            return request
        assert request.status.value in ("queued", "started"), request
        assert time.monotonic() < deadline, f"request {rq_id} did not finish in 60 s: {request}"
        time.sleep(0.1)


def test_the_sdk_exports_through_the_requests_api(settings: Settings, tmp_path: Path) -> None:
    settings = settings.with_overrides(http_port=free_port())
    IdentityStore(settings.data_dir).add_user("alice", "alice-pw", email="alice@example.com")
    start = datetime.now(UTC) - timedelta(minutes=10)
    store_root = settings.data_dir / "exports" / "exports"

    # No exporter runs yet: the first export stays queued, and its owner cancels it.
    with running_gateway(settings) as early, sdk_client(early.url) as client:
        client.events_api.create(
            models.ClientEventsRequest(
                events=[
                    models.EventRequest(scope="load:job", timestamp=start, job_id=4, obj_val="a"),
                    models.EventRequest(scope="save:job", timestamp=start, job_id=5, obj_val="b"),
                ],
                timestamp=datetime.now(UTC),
            )
        )
        cancelled, _ = client.events_api.create_export()
        queued, _ = client.requests_api.retrieve(cancelled.rq_id)
        assert (queued.status.value, queued.result_url, queued.progress) == ("queued", None, 0.0)
        client.requests_api.create_cancel(cancelled.rq_id)
        with pytest.raises(exceptions.NotFoundException):
            client.requests_api.retrieve(cancelled.rq_id)

    with LocalPipeline.run(settings, tmp_path / "pipeline.log") as pipeline:
        pipeline.wait_until_stored(60)
        with sdk_client(pipeline.url) as client:
            rq_id, _ = client.events_api.create_export(
                _from=start - timedelta(minutes=1), job_id=4, filename="job4.csv"
            )
            request = wait_until_finished(client, rq_id.rq_id)
            response = client.rest_client.GET(
                request.result_url,
                headers=make_request_headers(client),
                _parse_response=False,
            )
            assert response.status == 200
            assert response.headers["Content-Disposition"] == 'attachment; filename="job4.csv"'
            rows = list(csv.DictReader(io.StringIO(response.data.decode())))

            everything, _ = client.events_api.create_export()
            wait_until_finished(client, everything.rq_id)
            listed, _ = client.requests_api.list(status="finished", page_size=1)
            second_page, _ = client.requests_api.list(status="finished", page_size=1, page=2)
            # The cancelled export is gone: its exporter deleted it instead of running it.
            deadline = time.monotonic() + 30
            cancelled_id = dict(parse_qsl(cancelled.rq_id))["id"]
            while any(p.name.startswith(cancelled_id) for p in store_root.glob("*.json")):
                assert time.monotonic() < deadline, sorted(store_root.iterdir())
                time.sleep(0.1)

    assert [(row["scope"], row["obj_val"], row["user_name"]) for row in rows] == [
        ("load:job", "a", "alice")
    ]
    assert request.operation.type == "export:events" and request.operation.target == "events"
    # CVAT records no ids for an events export, whatever it filters on.
    assert request.operation.job_id is None
    assert request.owner.username == "alice" and request.progress == 1
    assert request.message == "" and request.result_url.endswith(urlencode({"rq_id": rq_id.rq_id}))
    assert request.created_date <= request.started_date <= request.finished_date
    assert request.expiry_date > datetime.now(UTC)
    # Newest first, one per page: the whole-log export, then the job's.
    assert listed.count == 2 and listed.next is not None and listed.previous is None
    assert [r.id for r in listed.results + second_page.results] == [everything.rq_id, rq_id.rq_id]
    assert not list(store_root.glob(f"{cancelled.rq_id}.csv"))
