"""The gateway for operators: its metrics listener, request ids, and JSON logs that hold no secret.

Metrics of in-process gateways share the test process's registry, served here by the same
listener ``eventpipe gateway`` starts, so those tests compare counters before and after; the
tests of several processes and of the logs run ``eventpipe gateway`` as its own processes.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import pytest

from eventpipe import metrics
from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings, SettingsError
from eventpipe_cli.embedded_broker import free_port
from ingest_gateway.server import check_metrics_port
from tests.integration.gateway_support import (
    RunningGateway,
    decode_message,
    running_gateway,
    topic_records,
)
from tests.integration.metrics_support import scrape, value

PASSWORD = "alice-pw-8f3k2"
EVENT = {"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z"}
BODY = {"events": [EVENT, EVENT, EVENT], "timestamp": "2026-01-01T00:00:01Z"}
# Decoded, then refused while enriching: the second event's payload is not JSON.
INVALID = {"events": [EVENT, {**EVENT, "payload": "{not json"}], "timestamp": BODY["timestamp"]}


@pytest.fixture
def metrics_url(settings: Settings) -> Iterator[str]:
    """The listener of this process's metrics, as ``eventpipe gateway`` serves it."""
    listening = settings.with_overrides(metrics_port=free_port())
    server = metrics.serve(listening, "gateway")
    assert server is not None
    try:
        yield f"http://127.0.0.1:{listening.metrics_port}/metrics"
    finally:
        metrics.stop(server)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[RunningGateway]:
    IdentityStore(settings.data_dir).add_user("alice", PASSWORD)
    with running_gateway(settings) as gateway:
        yield gateway


def post(gateway: RunningGateway, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/api/events", json=body, auth=("alice", PASSWORD), headers=headers
    )


def test_metrics_count_requests_by_status_and_events_by_outcome(
    gateway: RunningGateway, metrics_url: str
) -> None:
    before = scrape(metrics_url)
    assert post(gateway, BODY).status_code == 201
    assert post(gateway, INVALID).status_code == 400
    assert post(gateway, {"events": "nope"}).status_code == 400  # refused before decoding
    after = scrape(metrics_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"method": "POST", "route": "/api/events"}
    assert delta("eventpipe_http_requests_total", **route, status="201") == 1
    assert delta("eventpipe_http_requests_total", **route, status="400") == 2
    assert delta("eventpipe_http_request_duration_seconds_count", **route) == 3
    assert delta("eventpipe_events_accepted_total") == 3
    assert delta("eventpipe_events_rejected_total", reason="invalid") == 2
    assert value(after, "eventpipe_producer_unacknowledged_messages") == 0
    assert value(after, "eventpipe_producer_unacknowledged_bytes") == 0


def test_unknown_paths_share_one_label(gateway: RunningGateway, metrics_url: str) -> None:
    for n in range(3):
        assert httpx.get(f"{gateway.url}/scan/{n}").status_code == 404
    samples = scrape(metrics_url)
    assert not [s for s in samples if s.labels.get("route", "").startswith("/scan")]
    assert (
        value(samples, "eventpipe_http_requests_total", method="GET", route="other", status="404")
        >= 3
    )


def test_callers_cannot_read_the_metrics_on_the_api_port(gateway: RunningGateway) -> None:
    assert httpx.get(f"{gateway.url}/metrics").status_code == 404


@pytest.mark.parametrize("port", ["http_port", "intake_port"])
def test_a_metrics_port_callers_can_reach_is_refused(settings: Settings, port: str) -> None:
    exposed = settings.with_overrides(http_port=8080, intake_port=8090)
    exposed = exposed.with_overrides(metrics_port=getattr(exposed, port))
    with pytest.raises(SettingsError, match=r"EVENTPIPE_METRICS_PORT=80[89]0 is the API's or"):
        check_metrics_port(exposed)


def test_metrics_port_zero_serves_none(settings: Settings) -> None:
    assert metrics.serve(settings.with_overrides(metrics_port=0), "gateway") is None


def test_a_metrics_port_in_use_is_logged_and_the_process_goes_on(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = settings.with_overrides(http_host="127.0.0.1", metrics_port=taken.getsockname()[1])
        assert metrics.serve(busy, "gateway") is None
    assert f"cannot serve metrics on 127.0.0.1:{busy.metrics_port}" in caplog.text
    assert "this gateway runs without them" in caplog.text


async def test_request_id_round_trip_and_kafka_message_id(
    gateway: RunningGateway, settings: Settings
) -> None:
    generated = post(gateway, BODY)
    assert generated.status_code == 201
    request_id = generated.headers["x-request-id"]
    # Without an id from the caller, the answer's id is the Kafka message's.
    (record,) = await topic_records(settings, expected=1)
    assert str(decode_message(record).request_id) == request_id

    kept = post(gateway, BODY, **{"X-Request-ID": "trace-7f3a:span.01"})
    assert kept.headers["x-request-id"] == "trace-7f3a:span.01"
    # An error answer carries it too.
    refused = post(gateway, INVALID, **{"X-Request-ID": "abc-123"})
    assert refused.headers["x-request-id"] == "abc-123"
    for unusable in ("has spaces", "x" * 129, 'quote"d'):
        replaced = post(gateway, BODY, **{"X-Request-ID": unusable})
        assert uuid.UUID(replaced.headers["x-request-id"])

    records = await topic_records(settings, expected=5)
    message_ids = {str(decode_message(r).request_id) for r in records}
    # A caller's id never becomes a message id: the table deduplicates by it.
    assert len(message_ids) == 5
    assert "trace-7f3a:span.01" not in message_ids


class ServedGateway(NamedTuple):
    url: str
    metrics_url: str
    log_path: Path
    # The credentials it knows.
    secrets: dict[str, str]


@pytest.fixture
def served_gateway(settings: Settings, tmp_path: Path) -> Iterator[ServedGateway]:
    """``eventpipe gateway --workers 2`` logging JSON at DEBUG (the most it ever logs)."""
    store = IdentityStore(settings.data_dir)
    store.add_user("alice", PASSWORD)
    secrets = {"password": PASSWORD, "token": store.create_token("alice")}
    port = free_port()
    log_path = tmp_path / "gateway.log"
    settings = settings.with_overrides(
        log_format="json", log_level="DEBUG", metrics_port=free_port()
    )
    env = {**os.environ, **settings.to_env()}
    command = [str(Path(sys.executable).with_name("eventpipe")), "gateway", "--port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "--workers", "2"], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path)
        yield ServedGateway(
            url, f"http://127.0.0.1:{settings.metrics_port}/metrics", log_path, secrets
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_json_logs_carry_request_ids_and_no_secret(served_gateway: ServedGateway) -> None:
    url, _metrics_url, log_path, secrets = served_gateway
    wrong_password = "wrong-pw-5g7h1"
    made_up_token = "made-up-token-9d8s7"
    sent = [
        httpx.post(f"{url}/api/events", json=BODY, auth=("alice", PASSWORD)),
        httpx.post(f"{url}/api/events", json=BODY, auth=("alice", wrong_password)),
        httpx.post(
            f"{url}/api/events",
            json=BODY,
            headers={"Authorization": f"Token {secrets['token']}", "X-Request-ID": "req-token-1"},
        ),
        httpx.post(
            f"{url}/api/events",
            json=BODY,
            headers={"Authorization": f"Bearer {made_up_token}"},
        ),
    ]
    assert [answer.status_code for answer in sent] == [201, 401, 201, 401]
    deadline = time.monotonic() + 10
    while not all(a.headers["x-request-id"] in log_path.read_text() for a in sent):
        assert time.monotonic() < deadline, "a request id is missing from the log"
        time.sleep(0.1)

    text = log_path.read_text()
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    tagged = [line for line in lines if line.get("request_id") == "req-token-1"]
    # The access line, and what the producer logged while handling that request.
    assert {"uvicorn.access", "aiokafka.producer.producer"} <= {line["logger"] for line in tagged}

    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    for secret in [PASSWORD, wrong_password, secrets["token"], made_up_token, basic]:
        assert secret not in text


def test_metrics_of_several_gateway_processes_add_up(served_gateway: ServedGateway) -> None:
    url = served_gateway.url
    with httpx.Client(base_url=url, auth=("alice", PASSWORD)) as client:
        # A new connection each time, so the requests spread over both processes.
        for _ in range(10):
            answer = client.post("/api/events", json=BODY, headers={"Connection": "close"})
            assert answer.status_code == 201
    labels = {"method": "POST", "route": "/api/events", "status": "201"}
    # The gateway's metrics listener answers for both processes.
    samples = scrape(served_gateway.metrics_url)
    assert value(samples, "eventpipe_http_requests_total", **labels) == 10
    assert value(samples, "eventpipe_events_accepted_total") == 30
    assert value(samples, "eventpipe_producer_unacknowledged_messages") == 0


# Readiness answers in a row, each on a new connection, that show every gateway process ready:
# one answer shows only the process that took it, whose sibling may still be reaching the broker.
READY_IN_A_ROW = 10


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    in_a_row = 0
    while in_a_row < READY_IN_A_ROW:
        assert process.poll() is None, log_path.read_text()
        try:
            ready = httpx.get(f"{url}/health/ready").status_code == 200
        except httpx.TransportError:
            ready = False
        in_a_row = in_a_row + 1 if ready else 0
        assert time.monotonic() < deadline, "the gateway did not become ready"
        if not ready:
            time.sleep(0.1)
