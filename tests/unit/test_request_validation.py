"""Decoding, validation and enrichment of ``POST /api/events`` bodies (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from eventpipe.contracts import ClientEventsRequest, Identity
from ingest_gateway.errors import ApiError
from ingest_gateway.events import body as request_body

IDENTITY = Identity(
    user_id=7, user_name="alice", user_email="alice@example.com", org_id=3, org_slug="acme"
)


def body(*events: dict[str, object], **extra: object) -> bytes:
    return orjson.dumps({"events": list(events), "timestamp": "2026-01-01T00:00:10Z", **extra})


def event(**fields: object) -> dict[str, object]:
    return {"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z", **fields}


def rejection(raw: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        request_body.decode(raw)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize(
    ("raw", "field", "index", "words"),
    [
        (body(event(), event(job_id="7")), "events[1].job_id", 1, "Expected `int | null`"),
        (body(event(), event(), event(task_id=-1)), "events[2].task_id", 2, ">= 0"),
        (body(event(obj_id=2**63)), "events[0].obj_id", 0, "<= 9223372036854775807"),
        (body(event(timestamp="yesterday")), "events[0].timestamp", 0, "RFC3339"),
        (body({"timestamp": "2026-01-01T00:00:00Z"}), "events[0].scope", 0, "`scope`"),
        (body(event(payload={"a": 1})), "events[0].payload", 0, "Expected `str`"),
        (body(event(payload=None)), "events[0].payload", 0, "Expected `str`, got `null`"),
        (body(event(), event(source="server")), "events[1].source", 1, "'server'"),
        (body(event(source=None)), "events[0].source", 0, "got `null`"),
        (body(event(count=65536)), "events[0].count", 0, "<= 65535"),
        (body(event(duration=None)), "events[0].duration", 0, "got `null`"),
        (orjson.dumps({"events": []}), "timestamp", None, "`timestamp`"),
        (body(event(), previous_event=event(job_id=1.5)), "previous_event.job_id", None, "float"),
        (body(event(), timestamp="2026-13-01T00:00:00Z"), "timestamp", None, "RFC3339"),
    ],
)
def test_type_errors_name_the_field_and_the_event_index(
    raw: bytes, field: str, index: int | None, words: str
) -> None:
    error = rejection(raw)
    assert (error.field, error.index) == (field, index)
    assert words in error.error


@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"events": [', b"", body(event()).replace(b"load:job", b"load:\xff")]
)
def test_malformed_json_and_invalid_utf8_are_400(raw: bytes) -> None:
    error = rejection(raw)
    assert error.field is None and "not valid JSON" in error.error


def test_a_body_that_is_not_an_object_is_400() -> None:
    assert "Expected `object`, got `array`" in rejection(b"[]").error


def test_unknown_scope_is_400_naming_scope_and_index() -> None:
    error = rejection(body(event(), event(scope="send:working_time")))
    assert error.body() == {
        "error": "event scope 'send:working_time' is not allowed from the client",
        "field": "events[1].scope",
        "index": 1,
    }


def test_missing_events_list_is_empty_as_in_cvat() -> None:
    assert request_body.decode(b'{"timestamp": "2026-01-01T00:00:00Z"}').events == []


def decoded(raw: bytes) -> ClientEventsRequest:
    return request_body.decode(raw)


def test_enrichment_corrects_clock_skew_exactly_and_stamps_identity() -> None:
    request = decoded(
        body(
            event(timestamp="2026-01-01T00:00:00.250Z", user_id=99, user_name="mallory"),
            event(timestamp="2026-01-01T01:00:00+01:00", org_id=42, org_slug="other"),
            previous_event=event(timestamp="2026-01-01T00:00:09Z", user_id=99),
        )
    )
    received = datetime(2026, 1, 1, 0, 5, 10, 123456, tzinfo=UTC)  # client clock is 5 min late
    request_body.enrich(request, IDENTITY, received)
    skew = timedelta(minutes=5, microseconds=123456)
    assert [e.timestamp for e in request.events] == [
        datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC) + skew,
        datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC) + skew,
    ]
    assert request.previous_event is not None
    assert request.previous_event.timestamp == datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC) + skew
    assert request.previous_event.timestamp.tzinfo == UTC
    for e in request.events:
        assert e.timestamp.tzinfo == UTC
        assert (e.source, e.user_id, e.user_name, e.user_email, e.org_id, e.org_slug) == (
            "client",
            7,
            "alice",
            "alice@example.com",
            3,
            "acme",
        )


def test_naive_timestamps_are_utc() -> None:
    request = decoded(
        orjson.dumps(
            {"events": [event(timestamp="2026-01-01T00:00:00")], "timestamp": "2026-01-01T00:00:10"}
        )
    )
    request_body.enrich(request, IDENTITY, datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC))
    assert request.events[0].timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert request.timestamp == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)


def test_sandbox_identity_clears_client_org_fields() -> None:
    request = decoded(body(event(org_id=42, org_slug="other")))
    sandbox = Identity(user_id=7, user_name="alice")
    request_body.enrich(request, sandbox, datetime.now(UTC))
    assert (request.events[0].org_id, request.events[0].org_slug) == (None, None)
    assert request.events[0].user_email is None


def enriched_payloads(*payloads: str) -> list[object]:
    request = decoded(body(*(event(payload=p) for p in payloads)))
    request_body.enrich(request, IDENTITY, datetime.now(UTC))
    return [e.payload for e in request.events]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        # Python's json.dumps defaults, as CVAT's serializer writes: ", " and ": ", keys in the
        # order sent, non-ASCII escaped.
        (
            '{ "b": [1,2], "a": {"d": null, "c": "é"} }',
            '{"b": [1, 2], "a": {"d": null, "c": "\\u00e9"}}',
        ),
        # Floats as Python's repr, exponents included; integers of any length.
        (
            '{"x": 1e5, "y": 1.10, "z": 12345678901234567890123}',
            '{"x": 100000.0, "y": 1.1, "z": 12345678901234567890123}',
        ),
        # A repeated key keeps its first place and its last value.
        ('{"a": 1, "b": 2, "a": 3}', '{"a": 3, "b": 2}'),
        # Python's json reads and writes NaN and the infinities; a lone surrogate is kept.
        ("NaN", "NaN"),
        ("[1e400, -Infinity]", "[Infinity, -Infinity]"),
        ('"\\ud800"', '"\\ud800"'),
        # Trimmed first, as Django REST framework trims every text field.
        ("\u00a0 {}\n", "{}"),
    ],
)
def test_payload_is_stored_as_cvat_writes_it(sent: str, stored: str) -> None:
    assert enriched_payloads(sent) == [stored]


def test_payload_left_out_is_an_empty_object_and_source_is_client() -> None:
    request = decoded(body(event(), event(source="client", payload='{"a":1}')))
    request_body.enrich(request, IDENTITY, datetime.now(UTC))
    assert [(e.source, e.payload) for e in request.events] == [
        ("client", "{}"),
        ("client", '{"a": 1}'),
    ]


@pytest.mark.parametrize("payload", ["{not json", "", "{} {}", "nan", "1" * 5000])
def test_payload_that_is_not_json_is_400(payload: str) -> None:
    request = decoded(body(event(), event(payload=payload)))
    with pytest.raises(ApiError) as caught:
        request_body.enrich(request, IDENTITY, datetime.now(UTC))
    assert caught.value.status == 400
    assert (caught.value.field, caught.value.index) == ("events[1].payload", 1)
    assert "payload must be a string holding valid JSON" in caught.value.error


def test_text_fields_are_trimmed_and_blank_ones_refused_as_in_cvat() -> None:
    # The web client's click:element carries a button's innerText as obj_val.
    request = decoded(body(event(obj_name=" cvat-save-job-button ", obj_val="Save\n")))
    request_body.enrich(request, IDENTITY, datetime.now(UTC))
    assert (request.events[0].obj_name, request.events[0].obj_val) == (
        "cvat-save-job-button",
        "Save",
    )
    for field, text, words in [
        ("obj_name", " \t", "may not be blank"),
        ("obj_val", "", "may not be blank"),
        ("obj_val", "a\x00b", "NUL"),
    ]:
        refused = decoded(body(event(), event(**{field: text})))
        with pytest.raises(ApiError) as caught:
            request_body.enrich(refused, IDENTITY, datetime.now(UTC))
        assert (caught.value.status, caught.value.field) == (400, f"events[1].{field}")
        assert words in caught.value.error


def test_previous_event_is_only_time_corrected_as_in_cvat() -> None:
    # CVAT reads previous_event for the working time only: its payload is not parsed, its
    # source not checked.
    previous = event(payload="{", source="server", job_id=4)
    request = decoded(body(event(), previous_event=previous))
    request_body.enrich(request, IDENTITY, datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC))
    assert request.previous_event is not None
    assert (request.previous_event.payload, request.previous_event.source) == ("{", "server")
    assert request.previous_event.timestamp == datetime(2026, 1, 1, tzinfo=UTC)


def test_every_client_scope_of_cvat_is_accepted() -> None:
    for scope in ("load:workspace", "user:activity", "click:element"):
        assert decoded(body(event(scope=scope))).events[0].scope == scope


def test_timestamp_out_of_range_after_skew_correction_is_400() -> None:
    request = decoded(
        body(
            event(timestamp="0001-01-03T00:00:00Z"),  # a day after the send time: lands today
            event(timestamp="9999-12-31T23:59:59Z"),
            timestamp="0001-01-02T00:00:00Z",
        )
    )
    with pytest.raises(ApiError) as caught:
        request_body.enrich(request, IDENTITY, datetime.now(UTC))
    assert (caught.value.status, caught.value.field) == (400, "events[1].timestamp")


def test_request_timestamp_that_cannot_be_expressed_in_utc_is_400() -> None:
    request = ClientEventsRequest(
        events=[], timestamp=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    )
    with pytest.raises(ApiError) as caught:
        request_body.enrich(request, IDENTITY, datetime.now(UTC))
    assert (caught.value.status, caught.value.field) == (400, "timestamp")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.cvat+json",
    ],
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    request_body.require_json(content_type)


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/x-www-form-urlencoded"]
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        request_body.require_json(content_type)
    assert caught.value.status == 415
