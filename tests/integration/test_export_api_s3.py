"""Exports in S3 (moto's real S3 endpoint): the deprecated flow's 201 links a presigned URL, the
requests API's result_url is the gateway's download, streamed from S3."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from eventpipe.identity import IdentityStore
from eventpipe_cli.embedded_broker import EmbeddedBroker
from eventpipe_cli.testing.pipeline import LocalPipeline
from tests.integration.export_api_support import (
    ALICE,
    ExportClient,
    csv_rows,
    event,
    pipeline_settings,
    post_events,
)


def test_an_export_in_s3_is_linked_and_served(
    tmp_path: Path, broker: EmbeddedBroker, s3_endpoint: str
) -> None:
    settings = pipeline_settings(
        tmp_path / "data",
        broker,
        s3_endpoint=s3_endpoint,
        s3_bucket=f"exports-{uuid.uuid4().hex[:12]}",
        s3_access_key="t",
        s3_secret_key="t",
    )
    IdentityStore(settings.data_dir).add_user("alice", "alice-pw")
    with LocalPipeline.run(settings, tmp_path / "pipeline.log") as pipeline:
        sent = datetime.now(UTC) - timedelta(minutes=5)
        post_events(
            pipeline.url,
            ALICE,
            [
                event("load:job", sent, obj_val="first", job_id=7),
                event("save:job", sent + timedelta(seconds=3), obj_val="second", job_id=7),
            ],
        )
        pipeline.wait_until_stored(60)
        alice = ExportClient(pipeline.url, ALICE)
        query_id = alice.start(filename="mine.csv")
        ready = alice.wait_until_ended(query_id)
        served = alice.download(query_id)
        request = alice.wait_until_request_ended(alice.start_request(filename="mine.csv"))
        by_request = httpx.get(request["result_url"], auth=ALICE)

    assert ready.status_code == 201
    url = ready.json()["url"]
    assert url.startswith(f"http://{s3_endpoint}/{settings.s3_bucket}/")
    # The link needs no credentials and names the file.
    linked = httpx.get(url)
    assert linked.status_code == 200
    assert linked.headers["content-disposition"] == "attachment; filename*=UTF-8''mine.csv"
    assert linked.content == served.content
    assert served.headers["content-disposition"] == 'attachment; filename="mine.csv"'
    assert by_request.content == served.content
    assert by_request.headers["content-disposition"] == served.headers["content-disposition"]
    rows = csv_rows(served)
    assert {row["obj_val"] or row["scope"] for row in rows} == {
        "first",
        "second",
        "send:working_time",
    }
