"""The query of GET /api/events: defaults, bounds and what is left of a file name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import QueryParams

from eventpipe.contracts import EventFilter
from eventpipe.events_table import EARLIEST_TIMESTAMP as EARLIEST
from eventpipe.events_table import LATEST_TIMESTAMP as LATEST
from ingest_gateway.errors import ApiError
from ingest_gateway.exports.params import (
    content_disposition,
    parse_export_query,
    parse_export_request,
    sanitize_filename,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def parse(query: str) -> tuple[datetime, datetime]:
    parsed = parse_export_query(QueryParams(query), NOW)
    return parsed.since, parsed.until


def test_the_time_window_follows_cvat() -> None:
    # The deprecated flow's own rule (its API page); CVAT 2.73's export starts at the earliest.
    assert parse("") == (NOW - timedelta(days=30), NOW)
    current = parse_export_request(QueryParams(""), NOW)
    assert (current.since, current.until) == (EARLIEST, NOW)
    current = parse_export_request(QueryParams("job_id=3"), NOW)
    assert (current.since, current.until) == (EARLIEST, NOW)
    assert parse("from=2026-11-01") == (datetime(2026, 11, 1, tzinfo=UTC), NOW)
    assert parse("to=2026-11-01T10:00:00%2B02:00") == (
        EARLIEST,
        datetime(2026, 11, 1, 8, tzinfo=UTC),
    )
    # Bounds beyond what the table can hold select the same events, so they are clamped.
    assert parse("from=0999-01-01&to=9999-01-01") == (EARLIEST, LATEST)


def test_empty_values_count_as_not_given() -> None:
    parsed = parse_export_query(QueryParams("query_id=&user_id=&from=&to=&filename=&job_id=3"), NOW)
    assert parsed.query_id is None
    assert parsed.requested == EventFilter(job_id=3)
    assert (parsed.since, parsed.until, parsed.filename) == (NOW - timedelta(days=30), NOW, None)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("action=", "action"),
        ("user_id=%2B5", "user_id"),
        ("job_id=%D9%A3", "job_id"),  # an Arabic-Indic digit, which int() would take
        (f"task_id={2**63}", "task_id"),
        ("from=9999-12-31T23:59:59-01:00", "from"),
        # CVAT's refusal on the deprecated flow, whatever the other parameter says.
        ("location=cloud_storage", "location"),
        ("cloud_storage_id=3", "cloud_storage_id"),
        ("location=local&cloud_storage_id=3", "cloud_storage_id"),
    ],
)
def test_lookalike_values_are_refused(query: str, field: str) -> None:
    with pytest.raises(ApiError) as refused:
        parse_export_query(QueryParams(query), NOW)
    assert (refused.value.status, refused.value.field) == (400, field)


def test_query_ids_are_read_in_any_uuid_spelling() -> None:
    query_id = uuid.uuid4()
    parsed = parse_export_query(QueryParams(f"query_id={query_id.hex}&action=download"), NOW)
    assert (parsed.query_id, parsed.download) == (query_id, True)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("report.csv", "report.csv"),
        ("..\\..\\win.ini", "win.ini"),
        ("a\tb\u2028c\u0085d.csv", "abcd.csv"),
        (" .. / . ", None),
        ("x" * 300, "x" * 255),
    ],
)
def test_file_names_keep_only_what_is_safe(raw: str, kept: str | None) -> None:
    assert sanitize_filename(raw) == kept


def test_a_non_ascii_name_gets_an_ascii_fallback() -> None:
    assert content_disposition("plain.csv") == 'attachment; filename="plain.csv"'
    assert content_disposition("ünï.csv") == (
        "attachment; filename=\"_n_.csv\"; filename*=UTF-8''%C3%BCn%C3%AF.csv"
    )
