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
from ingest_gateway.exports.request_answer import RequestOwner, describe, parse_rq_id

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
    assert request.id == f"action=export&target=events&id={status.query_id}&user_id=7"
    assert parse_rq_id(request.id) == (status.query_id, 7)
    assert (request.operation.type, request.operation.target) == ("export:events", "events")
    # CVAT records none of an events export's ids, whatever it filters on.
    operation = request.operation
    ids = (operation.org_id, operation.job_id, operation.task_id, operation.format)
    assert ids == (None, None, None, None)
    assert request.owner.id == 7 and request.owner.username == "alice"
    assert request.created_date == status.created_at
    finished = name == "finished"
    assert (request.result_url, request.progress) == ((URL, 1.0) if finished else (None, 0.0))
    assert request.message == ("Code: 241. MEMORY_LIMIT" if name == "failed" else "")
    ended = name in ("finished", "failed")
    assert (request.finished_date is not None, request.expiry_date is not None) == (ended, ended)
    assert (request.started_date is not None) == (name not in ("queued", "legacy"))


def test_an_rq_id_is_cvats_form_or_the_bare_id_it_was_before() -> None:
    query_id = uuid.uuid4()
    assert parse_rq_id(str(query_id)) == (query_id, None)
    assert parse_rq_id(f"action=export&target=events&id={query_id}&user_id=12") == (query_id, 12)
    # Field order is not part of the id's meaning.
    assert parse_rq_id(f"user_id=12&id={query_id}&target=events&action=export") == (query_id, 12)
    for other in (
        "nope",
        f"action=export&target=task&id={query_id}&user_id=12",
        f"action=import&target=events&id={query_id}&user_id=12",
        "action=export&target=events&id=nope&user_id=12",
        f"action=export&target=events&id={query_id}&user_id=-1",
        f"action=export&target=events&id={query_id}",
        f"action=export&target=events&id={query_id}&user_id=1&format=CSV",
    ):
        assert parse_rq_id(other) is None, other
