"""CVAT's filters of GET /api/requests over an events export: simple ones, JSON Logic, sort."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from starlette.datastructures import QueryParams

from eventpipe.export_records import ExportState, ExportStatus, new_status
from ingest_gateway.errors import ApiError
from ingest_gateway.exports.request_filters import ordered, request_filter

QUEUED = new_status(uuid.uuid4(), 7, "a.csv")
FINISHED = new_status(uuid.uuid4(), 7, "b.csv").ended(ExportState.FINISHED, timedelta(hours=1))


def matching(query: str) -> list[ExportStatus]:
    wanted = request_filter(QueryParams(query))
    return [status for status in (QUEUED, FINISHED) if wanted.matches(status)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [QUEUED, FINISHED]),
        ("status=finished", [FINISHED]),
        ("action=export&target=events", [QUEUED, FINISHED]),
        ("target=task", []),
        # What CVAT records none of for an events export matches no value, and '' filters nothing.
        ("org=acme", []),
        ("org=&org_id=", [QUEUED, FINISHED]),
        ("job_id=4", []),
        ("format=CSV", []),
        ('filter={"==":[{"var":"status"},"queued"]}', [QUEUED]),
        ('filter={"!":[{"==":[{"var":"status"},"queued"]}]}', [FINISHED]),
        ('filter={"in":[{"var":"status"},["failed","finished"]]}', [FINISHED]),
        ('filter={"in":["fin",{"var":"status"}]}', [FINISHED]),
        (
            'filter={"or":[{"==":[{"var":"job_id"},4]},{"==":[{"var":"org"},null]}]}',
            [QUEUED, FINISHED],
        ),
        # A null field is never more or less than anything, and kinds do not mix.
        ('filter={">":[{"var":"job_id"},0]}', []),
        ('filter={"<":[{"var":"status"},5]}', []),
        ('filter={">=":[{"var":"status"},"queued"]}', [QUEUED]),
        ('filter={"in":[{"var":"org"},"acme"]}', []),
        # Lists do not order: their items could be of kinds that do not compare.
        ('filter={"<":[[1],["a"]]}', []),
    ],
)
def test_filters_match_as_cvats_do(query: str, expected: list[ExportStatus]) -> None:
    assert matching(query) == expected


def test_sort_orders_by_cvats_fields() -> None:
    statuses = [QUEUED, FINISHED]  # QUEUED was created first
    assert ordered(statuses, QueryParams("")) == [FINISHED, QUEUED]
    assert ordered(statuses, QueryParams("sort=created_date")) == [QUEUED, FINISHED]
    assert ordered(statuses, QueryParams("sort=-status")) == [QUEUED, FINISHED]
    assert ordered(statuses, QueryParams("sort=action,-created_date")) == [FINISHED, QUEUED]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=owner", "sort"),
        ("status=running", "status"),
        ("org_id=-1", "org_id"),
        ("filter={", "filter"),
        ("filter=[1]", "filter"),
        ('filter={"var":"owner"}', "filter"),
        ('filter={"==":[1]}', "filter"),
        ('filter={"!":[1,2]}', "filter"),
        ('filter={"and":{"var":"status"}}', "filter"),
        ('filter={"==":[1,2],"!=":[1,2]}', "filter"),
    ],
)
def test_bad_filters_are_refused_by_name(query: str, field: str) -> None:
    with pytest.raises(ApiError) as refused:
        request_filter(QueryParams(query))
        ordered([QUEUED], QueryParams(query))
    assert (refused.value.status, refused.value.field) == (400, field)
