"""The intake for CVAT's server over HTTP, against a real broker: what reaches Kafka, and answers.

CVAT's handler (python-logstash-async's HttpTransport) treats anything but 200 as "keep and send
again", so every answer here is one the handler acts on.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY

from eventpipe.contracts import (
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_REASON_HEADER,
)
from eventpipe.errors import CommandError
from eventpipe.settings import Settings, SettingsError
from eventpipe_cli.embedded_broker import EmbeddedBroker, free_port
from eventpipe_cli.testing.pipeline import start_eventpipe, stop_processes, wait_ready
from ingest_gateway.intake.app import check_intake_settings
from ingest_gateway.intake.records import INVALID_EVENT_REASON
from ingest_gateway.intake.server import intake_running
from tests.conftest import isolated_settings
from tests.integration.gateway_support import events_topic_size, topic_records
from tests.integration.intake_support import (
    T0,
    intake_accepted,
    intake_url,
    running_intake,
    server_event,
    with_intake_port,
)
from tests.integration.metrics_support import scrape, value
from tests.integration.openapi_support import check_against_schema
from tests.messages import decode_rows


def intake_dead_lettered() -> float:
    return (
        REGISTRY.get_sample_value("eventpipe_intake_events_total", {"outcome": "dead_lettered"})
        or 0
    )


@pytest.fixture
def intake_settings(settings: Settings) -> Settings:
    return with_intake_port(settings)


async def test_partly_invalid_batch_stores_the_valid_and_dead_letters_each_invalid(
    intake_settings: Settings,
) -> None:
    valid_iso = server_event(
        scope="send:exception",
        timestamp="2026-03-02T09:00:01.500Z",
        payload={"message": "boom", "stack": "Traceback"},
        source="client",
    )
    batch = [
        server_event(),
        {"timestamp": str(T0.timestamp())},  # no scope
        valid_iso,
        server_event(timestamp="yesterday"),
        server_event(job_id="not a number"),
    ]
    accepted, dead = intake_accepted(), intake_dead_lettered()
    with running_intake(intake_settings) as url:
        answer = httpx.post(url, json=batch)

    assert answer.status_code == 200
    assert answer.json() == {"accepted": 2, "dead_lettered": 3}
    assert (intake_accepted() - accepted, intake_dead_lettered() - dead) == (2, 3)

    (record,) = await topic_records(intake_settings, 1)
    message = decode_rows(record.value or b"")
    first, second = message.events
    assert (first.scope, first.timestamp, first.source) == ("create:task", T0, "server")
    assert (first.task_id, first.user_id, first.org_slug, first.access_token_id) == (
        11,
        5,
        "acme",
        9,
    )
    assert first.payload == '{"request":{"id":"7c1f"}}'
    # An object payload is stored as CVAT's server writes one (compact, keys as sent).
    assert second.payload == '{"message":"boom","stack":"Traceback"}'
    assert second.timestamp == datetime(2026, 3, 2, 9, 0, 1, 500000, tzinfo=UTC)

    dead_letters = await topic_records(
        intake_settings.with_overrides(events_topic=intake_settings.dead_letter_topic), 3
    )
    reasons = sorted(
        dict(letter.headers)[DEAD_LETTER_DETAIL_HEADER].decode() for letter in dead_letters
    )
    assert {dict(letter.headers)[DEAD_LETTER_REASON_HEADER] for letter in dead_letters} == {
        INVALID_EVENT_REASON.encode()
    }
    assert reasons[0].startswith(
        "event 1 of an intake batch: Object missing required field `scope`"
    )
    assert reasons[1].startswith("event 3 of an intake batch:") and "$.timestamp" in reasons[1]
    assert reasons[2].startswith("event 4 of an intake batch:") and "$.job_id" in reasons[2]
    # The dead letters hold the events exactly as sent, for fixing and replaying.
    sent_invalid = [orjson.dumps(batch[index]) for index in (1, 3, 4)]
    assert sorted(orjson.dumps(orjson.loads(letter.value or b"")) for letter in dead_letters) == (
        sorted(sent_invalid)
    )


async def test_an_event_whose_offset_moves_it_before_year_1_is_dead_lettered_not_a_500(
    intake_settings: Settings,
) -> None:
    """Found by schemathesis' kind of input: the offset made the UTC conversion overflow."""
    batch = [
        server_event(),
        server_event(timestamp="0001-01-01T00:00:00+00:01"),
        server_event(timestamp="9999-12-31T23:59:59-00:01"),
    ]
    with running_intake(intake_settings) as url:
        answer = httpx.post(url, json=batch)
    assert (answer.status_code, answer.json()) == (200, {"accepted": 1, "dead_lettered": 2})
    dead_letters = await topic_records(
        intake_settings.with_overrides(events_topic=intake_settings.dead_letter_topic), 2
    )
    for letter in dead_letters:
        assert (
            "outside 1900-01-01..2299-12-31"
            in dict(letter.headers)[DEAD_LETTER_DETAIL_HEADER].decode()
        )


async def test_an_event_with_a_lone_surrogate_as_python_writes_it_costs_only_itself(
    intake_settings: Settings,
) -> None:
    """Python's json module (CVAT's server) writes a string holding a lone surrogate as
    "\\ud800", which the fast decoder refuses: that must not make the whole batch a 400, which
    the handler would resend for ever."""
    batch = [server_event(), server_event(obj_val="\ud800"), server_event(task_id=12)]
    with running_intake(intake_settings) as url:
        answer = httpx.post(
            url, content=json.dumps(batch), headers={"Content-Type": "application/json"}
        )
    assert (answer.status_code, answer.json()) == (200, {"accepted": 2, "dead_lettered": 1})
    (record,) = await topic_records(intake_settings, 1)
    stored = decode_rows(record.value or b"").events
    assert [event.task_id for event in stored] == [11, 12]
    (letter,) = await topic_records(
        intake_settings.with_overrides(events_topic=intake_settings.dead_letter_topic), 1
    )
    assert json.loads(letter.value or b"") == batch[1]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "not valid JSON"),
        (orjson.dumps(server_event()), "send a JSON array of event objects"),
        (b"[1, 2]", "element 0 of the batch is not an event object"),
        (b'[{"scope": "a", "timestamp": "1"}, "x"]', "element 1 of the batch"),
        # Was a 500: the decoder ran out of recursion.
        (b"[" * 5000, "nests arrays or objects too deeply"),
        (b'[{"scope": "a", "timestamp": "1", "x": ' + b"[" * 5000, "too deeply"),
    ],
)
async def test_a_body_that_is_not_an_array_of_objects_is_400_and_stores_nothing(
    intake_settings: Settings, body: bytes, error: str
) -> None:
    with running_intake(intake_settings) as url:
        before = await events_topic_size(intake_settings)
        answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400
        assert error in answer.json()["error"]
        assert await events_topic_size(intake_settings) == before


async def test_limits_answer_413(tmp_path: Path, broker: EmbeddedBroker) -> None:
    settings = with_intake_port(
        isolated_settings(
            tmp_path, broker, intake_max_events_per_batch=2, intake_max_body_bytes=4096
        )
    )
    with running_intake(settings) as url:
        too_many = httpx.post(url, json=[server_event()] * 3)
        too_large = httpx.post(url, json=[server_event(obj_val="x" * 5000)])
    assert too_many.status_code == 413
    assert "limit of 2 per batch" in too_many.json()["error"]
    assert too_large.status_code == 413


async def test_basic_auth_when_configured(tmp_path: Path, broker: EmbeddedBroker) -> None:
    settings = with_intake_port(
        isolated_settings(tmp_path, broker, intake_username="cvat", intake_password="s3cret")
    )
    with running_intake(settings) as url:
        anonymous = httpx.post(url, json=[server_event()])
        wrong = httpx.post(url, json=[server_event()], auth=("cvat", "guess"))
        other_user = httpx.post(url, json=[server_event()], auth=("admin", "s3cret"))
        garbled = httpx.post(url, json=[server_event()], headers={"Authorization": "Basic %%%"})
        right = httpx.post(url, json=[server_event()], auth=("cvat", "s3cret"))
    for refused in (anonymous, wrong, other_user, garbled):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert right.status_code == 200
    assert right.json() == {"accepted": 1, "dead_lettered": 0}
    assert await events_topic_size(settings) == 1


async def test_without_credentials_any_caller_is_taken(intake_settings: Settings) -> None:
    with running_intake(intake_settings) as url:
        answer = httpx.post(url, json=[server_event()], auth=("anyone", "anything"))
    assert answer.status_code == 200


def test_settings_that_would_expose_or_block_the_intake_are_refused() -> None:
    with pytest.raises(SettingsError, match="INTAKE_USERNAME and EVENTPIPE_INTAKE_PASSWORD"):
        check_intake_settings(Settings(intake_port=9000, intake_username="cvat"))
    with pytest.raises(SettingsError, match="public API port"):
        check_intake_settings(Settings(intake_port=8080, http_port=8080))
    with pytest.raises(SettingsError, match="INTAKE_SPOOL_MAX_BYTES=1000 is below"):
        check_intake_settings(
            Settings(intake_port=9000, intake_max_body_bytes=2000, intake_spool_max_bytes=1000)
        )
    with pytest.raises(SettingsError, match="INTAKE_SPOOL_AFTER_SECONDS=0 must be above 0"):
        check_intake_settings(Settings(intake_port=9000, intake_spool_after_seconds=0))


async def test_while_the_broker_is_away_batches_are_spooled_and_a_full_spool_is_503(
    tmp_path: Path,
) -> None:
    batch = orjson.dumps([server_event()])
    settings = with_intake_port(
        Settings(
            data_dir=tmp_path,
            kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
            produce_timeout_seconds=1.0,
            intake_max_body_bytes=len(batch),
            # Room for a batch or two, not four.
            intake_spool_max_bytes=3 * len(batch),
        )
    )
    headers = {"content-type": "application/json"}
    with running_intake(settings, wait_ready=False) as url:
        spooled = httpx.post(url, content=batch, headers=headers)
        spooling = httpx.get(f"{url}health/ready")
        answers = [httpx.post(url, content=batch, headers=headers) for _ in range(3)]
        full_ready = httpx.get(f"{url}health/ready")
        document = httpx.get(f"{url}api/schema").json()
    assert spooled.status_code == 200
    assert spooled.json() == {"accepted": 1, "dead_lettered": 0}
    assert (spooling.status_code, spooling.json()["status"]) == (200, "spooling")
    full = answers[-1]
    assert full.status_code == 503
    assert full.headers["Retry-After"] == "1"
    assert "spool is full" in full.json()["error"]
    assert full_ready.status_code == 503
    # As the intake's own schema documents them.
    check_against_schema(document, "POST", spooled)
    check_against_schema(document, "POST", full)


def test_an_intake_port_in_use_stops_the_gateway_with_a_clear_error(
    intake_settings: Settings,
) -> None:
    with socket.socket() as taken:
        taken.bind((intake_settings.intake_host, intake_settings.intake_port))
        taken.listen()
        where = f"{intake_settings.intake_host}:{intake_settings.intake_port}"
        with (
            pytest.raises(CommandError, match=re.escape(f"the intake could not listen on {where}")),
            intake_running(intake_settings),
        ):
            pass


async def test_with_several_gateway_processes_their_metrics_count_the_intakes_events(
    intake_settings: Settings, tmp_path: Path
) -> None:
    settings = intake_settings.with_overrides(http_port=free_port(), metrics_port=free_port())
    with (tmp_path / "gateway.log").open("wb") as log:
        gateway = start_eventpipe(["gateway", "--workers", "2"], settings, log)
        try:
            wait_ready(f"http://127.0.0.1:{settings.http_port}", 60, [gateway])
            wait_ready(intake_url(settings).rstrip("/"), 60, [gateway])
            answer = httpx.post(intake_url(settings), json=[server_event(), server_event()])
            assert answer.status_code == 200
            # The gateway's metrics listener sums every process's files, the intake's too.
            samples = scrape(f"http://127.0.0.1:{settings.metrics_port}/metrics")
            assert value(samples, "eventpipe_intake_events_total", outcome="accepted") == 2
        finally:
            stop_processes([gateway])
    assert gateway.returncode == 0, (tmp_path / "gateway.log").read_text()


def test_a_stalled_request_head_is_cut_off_by_the_configured_deadline(
    intake_settings: Settings,
) -> None:
    """EVENTPIPE_HEADER_READ_TIMEOUT_SECONDS holds on the intake's port as on the API's."""
    settings = intake_settings.with_overrides(header_read_timeout_seconds=0.5)
    with (
        running_intake(settings),
        socket.create_connection(("127.0.0.1", settings.intake_port), timeout=10) as connection,
    ):
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert orjson.loads(body)["error"] == "the request line and headers did not arrive within 0.5 s"
