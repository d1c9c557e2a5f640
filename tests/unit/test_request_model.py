"""Each state of an export record, described as CVAT's Request, parses with the cvat-sdk's own
models and type checks; "started" is the state a running export has only for a moment in the
integration tests, so every state is checked here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import urllib3
from cvat_sdk.api_client import ApiClient, models

from eventpipe.contracts import ExportFilter
from eventpipe.export_records import ExportState, ExportStatus, new_status
from ingest_gateway.request_model import RequestOwner, describe

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FILTER = ExportFilter(since=T0, until=T0 + timedelta(days=1), org_id=3, user_id=7, job_id=9)
TTL = timedelta(hours=1)
URL = "http://gateway/api/events/download?rq_id=x"


def records() -> dict[str, ExportStatus]:
    queued = new_status(uuid.uuid4(), 7, "a.csv", FILTER)
    running = queued.with_state(ExportState.RUNNING, started_at=queued.created_at, rows=10)
    return {
        "queued": queued,
        "started": running,
        "finished": running.ended(ExportState.FINISHED, TTL, rows=20, size=300),
        "failed": running.ended(ExportState.FAILED, TTL, error="Code: 241. MEMORY_LIMIT"),
        # Written before records kept their filter: no ids to report.
        "legacy": msgspec.structs.replace(queued, filter=None),
    }


def parsed_by_the_sdk(answer: object) -> models.Request:
    response = urllib3.HTTPResponse(
        body=msgspec.json.encode(answer),
        headers={"content-type": "application/json"},
        preload_content=True,
    )
    with ApiClient() as client:
        request = client.deserialize(response, (models.Request,), _check_type=True)
    assert isinstance(request, models.Request)
    return request


@pytest.mark.parametrize("name", list(records()))
def test_every_state_parses_as_the_sdks_request(name: str) -> None:
    status = records()[name]
    request = parsed_by_the_sdk(describe(status, RequestOwner(id=7, username="alice"), URL))

    assert request.status.value == ("queued" if name == "legacy" else name)
    assert request.id == str(status.query_id)
    assert (request.operation.type, request.operation.target) == ("export:events", "events")
    ids = (request.operation.org_id, request.operation.job_id, request.operation.task_id)
    assert ids == ((None, None, None) if name == "legacy" else (3, 9, None))
    assert request.owner.id == 7 and request.owner.username == "alice"
    assert request.created_date == status.created_at
    finished = name == "finished"
    assert (request.result_url, request.progress) == ((URL, 1.0) if finished else (None, None))
    assert request.message == ("Code: 241. MEMORY_LIMIT" if name == "failed" else "")
    ended = name in ("finished", "failed")
    assert (request.finished_date is not None, request.expiry_date is not None) == (ended, ended)
    assert (request.started_date is not None) == (name not in ("queued", "legacy"))
