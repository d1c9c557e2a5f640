"""CVAT's own working-time test cases (cvat/apps/events/tests/test_events.py, read at run time),
answered by eventpipe: first by the gateway's decoding and enrichment and the processor's
working-time function, without engines; then through the API, each request posted to the real
gateway, through the broker to ``eventpipe worker`` and into the events table (chDB), where the
stored ``send:working_time`` rows are compared with CVAT's expectations."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import orjson
import pytest

from eventpipe.contracts import Event, Identity
from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe.working_time import working_time_events
from eventpipe_cli.testing.pipeline import wait_until_committed
from ingest_gateway.events import body as request_body
from tests.conformance.cvat_working_time import Case, Request, cvat_cases, recorded
from tests.integration.gateway_support import running_gateway
from tests.integration.worker_support import query, running_worker
from tests.messages import ingest_message

USER = ("testuser", "testuser-pw")
IDENTITY = Identity(user_id=100, user_name=USER[0], user_email="testuser@example.org")
SENT_AT = datetime(2026, 8, 12, 10, 0, tzinfo=UTC)


def working_time_ms(request: Request) -> list[int]:
    """The durations of the send:working_time events one posted request yields."""
    body = {"events": request.events, "previous_event": request.previous_event}
    decoded = request_body.decode(orjson.dumps({**body, "timestamp": SENT_AT.isoformat()}))
    request_body.enrich(decoded, IDENTITY, SENT_AT)
    # As the processor reads them: fields the client left out take the contract's defaults.
    events = msgspec.json.decode(msgspec.json.encode(decoded.events), type=list[Event])
    message = ingest_message(
        IDENTITY, events, received_at=SENT_AT, previous_event=decoded.previous_event
    )
    return [event.duration or 0 for event in working_time_events(message)]


@pytest.mark.parametrize("case", cvat_cases(), ids=lambda case: case.name)
def test_cvat_working_time_case(case: Case) -> None:
    got = [(number, working_time_ms(case.requests[number])) for number, _ in case.expected]
    assert got == [(number, recorded(ms)) for number, ms in case.expected]


async def test_cvat_working_time_cases_through_the_api(settings: Settings, tmp_path: Path) -> None:
    cases = cvat_cases()
    IdentityStore(settings.data_dir).add_user(*USER, email="testuser@example.org")
    # Request id (the gateway's X-Request-ID, also in the stored payload) -> (case, CVAT's ms).
    expected: dict[str, tuple[str, float]] = {}
    with running_gateway(settings) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, auth=USER) as client:
            for case in cases:
                for number, ms in case.expected:
                    request = case.requests[number]
                    body = {
                        "events": request.events,
                        "previous_event": request.previous_event,
                        "timestamp": datetime.now(UTC).isoformat(),
                    }
                    response = await client.post("/api/events", json=body)
                    assert response.status_code == 201, response.text
                    expected[response.headers["x-request-id"]] = (case.name, ms)

    with running_worker(settings, tmp_path / "worker.log") as worker:
        await wait_until_committed(settings, messages=len(expected))
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    # Every row: the sink keeps a redelivered copy out, so none may show twice.
    rows = query(
        settings,
        "SELECT payload, duration, source, remote_addr FROM events"
        " WHERE scope = 'send:working_time'",
    )
    stored: dict[str, list[int]] = {}
    for payload, duration, source, remote_addr in rows:
        assert isinstance(payload, str) and isinstance(duration, int)
        # Recorded as CVAT's server records it: its own source, the caller's address.
        assert (source, remote_addr) == ("server", "127.0.0.1")
        request_id = orjson.loads(payload)["request"]["id"]
        stored.setdefault(request_id, []).append(duration)
    got = {rid: (case, stored.get(rid, [])) for rid, (case, _) in expected.items()}
    assert got == {rid: (case, recorded(ms)) for rid, (case, ms) in expected.items()}
    assert stored.keys() <= expected.keys()
