"""CVAT's own working-time test cases (cvat/apps/events/tests/test_events.py, read at run time)
pass through the API: each of their requests is posted to the real gateway, goes through the
broker to ``eventpipe worker`` and into the events table (chDB), and the stored
``send:working_time`` rows are compared with CVAT's expectations."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from tests.cvat_working_time import cvat_cases
from tests.integration.delivery_support import wait_until_processed
from tests.integration.gateway_support import running_gateway
from tests.integration.worker_support import query, running_worker

USER = ("testuser", "testuser-pw")


async def test_cvat_working_time_cases_through_the_api(settings: Settings, tmp_path: Path) -> None:
    cases = cvat_cases()
    IdentityStore(settings.data_dir).add_user(*USER, email="testuser@example.org")
    # Request id (the gateway's X-Request-ID, also in the stored payload) -> (case, CVAT's ms).
    expected: dict[str, tuple[str, int]] = {}
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
                    expected[response.headers["x-request-id"]] = (case.name, int(ms))

    with running_worker(settings, tmp_path / "worker.log") as worker:
        await wait_until_processed(settings, len(expected))
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    # DISTINCT: a copy the broker redelivered is the same row, whatever the table's engine.
    rows = query(
        settings,
        "SELECT DISTINCT payload, duration FROM events WHERE scope = 'send:working_time'",
    )
    stored: dict[str, list[int]] = {}
    for payload, duration in rows:
        assert isinstance(payload, str) and isinstance(duration, int)
        request_id = orjson.loads(payload)["request"]["id"]
        stored.setdefault(request_id, []).append(duration)
    # CVAT records a working-time event only for a total that is not zero.
    got = {rid: (case, stored.get(rid, [])) for rid, (case, _) in expected.items()}
    want = {rid: (case, [ms] if ms else []) for rid, (case, ms) in expected.items()}
    assert got == want
    assert stored.keys() <= expected.keys()
