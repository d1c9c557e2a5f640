"""The unchanged cvat-sdk client logs events, then exports them as CVAT's own REST tests do:
poll ``GET /api/events`` (first with an empty ``query_id``) until 201, then download the CSV."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from cvat_sdk.api_client import ApiClient, Configuration, models

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.testing.pipeline import LocalPipeline

pytestmark = pytest.mark.slow


def export_csv(client: ApiClient, **filters: Any) -> list[dict[str, str]]:
    endpoint = client.events_api.list_endpoint
    query_id = ""
    deadline = time.monotonic() + 60
    while True:
        _, answer = endpoint.call_with_http_info(
            **filters, query_id=query_id, _parse_response=False
        )
        if answer.status == HTTPStatus.CREATED:
            break
        assert answer.status == HTTPStatus.ACCEPTED, answer.data
        query_id = query_id or json.loads(answer.data)["query_id"]
        assert time.monotonic() < deadline, "the export did not finish in 60 s"
        time.sleep(0.1)
    _, answer = endpoint.call_with_http_info(
        **filters, query_id=query_id, action="download", _parse_response=False
    )
    assert answer.status == HTTPStatus.OK
    return list(csv.DictReader(io.StringIO(answer.data.decode())))


def test_the_sdk_exports_the_events_it_logged(settings: Settings, tmp_path: Path) -> None:
    settings = settings.with_overrides(http_port=free_port())
    identity = IdentityStore(settings.data_dir)
    identity.add_user("alice", "alice-pw", email="alice@example.com")
    acme = identity.add_org("acme")
    identity.add_member("acme", "alice", "supervisor")
    start = datetime.now(UTC) - timedelta(minutes=10)

    with LocalPipeline.run(settings, tmp_path / "pipeline.log") as pipeline:
        config = Configuration(host=pipeline.url, username="alice", password="alice-pw")
        with ApiClient(config) as client:
            sandbox = models.ClientEventsRequest(
                events=[
                    models.EventRequest(scope="load:job", timestamp=start, job_id=4, obj_val="a"),
                    models.EventRequest(
                        scope="save:job", timestamp=start + timedelta(seconds=8), job_id=4
                    ),
                ],
                timestamp=datetime.now(UTC),
            )
            client.events_api.create(sandbox)
            in_acme = models.ClientEventsRequest(
                events=[models.EventRequest(scope="click:element", timestamp=start, job_id=9)],
                timestamp=datetime.now(UTC),
            )
            client.events_api.create(in_acme, x_organization="acme")
            pipeline.wait_until_stored(60)

            everything = export_csv(client)
            in_org = export_csv(client, org_id=acme.id, _from=start - timedelta(minutes=1))

    assert sorted((row["scope"], row["job_id"]) for row in everything) == [
        ("click:element", "9"),
        ("load:job", "4"),
        ("save:job", "4"),
        ("send:working_time", "4"),
    ]
    assert [row["timestamp"] for row in everything] == sorted(r["timestamp"] for r in everything)
    [working_time] = [row for row in everything if row["scope"] == "send:working_time"]
    assert (working_time["duration"], working_time["user_name"]) == ("8000", "alice")
    assert [(row["scope"], row["org_slug"]) for row in in_org] == [("click:element", "acme")]
