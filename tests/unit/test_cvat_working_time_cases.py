"""CVAT's own working-time test cases (read from its source at run time) against the gateway's
decoding and enrichment and the processor's working-time function, without engines. The same
cases go through the real gateway, broker, worker and table in
tests/integration/test_cvat_working_time.py."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from eventpipe.contracts import Identity
from ingest_gateway import request_body
from stream_processors.working_time import working_time_events
from tests.cvat_working_time import Case, Request, cvat_cases
from tests.messages import ingest_message

IDENTITY = Identity(user_id=100, user_name="testuser", user_email="testuser@example.org")
SENT_AT = datetime(2026, 8, 12, 10, 0, tzinfo=UTC)


def working_time_ms(request: Request) -> list[int]:
    """The durations of the send:working_time events one posted request yields."""
    body = {"events": request.events, "previous_event": request.previous_event}
    decoded = request_body.decode(orjson.dumps({**body, "timestamp": SENT_AT.isoformat()}))
    request_body.enrich(decoded, IDENTITY, SENT_AT)
    message = ingest_message(
        IDENTITY, decoded.events, received_at=SENT_AT, previous_event=decoded.previous_event
    )
    return [event.duration or 0 for event in working_time_events(message)]


@pytest.mark.parametrize("case", cvat_cases(), ids=lambda case: case.name)
def test_cvat_working_time_case(case: Case) -> None:
    # CVAT records a working-time event only for a total that is not zero.
    got = [(number, working_time_ms(case.requests[number])) for number, _ in case.expected]
    want = [(number, [int(ms)] if ms else []) for number, ms in case.expected]
    assert got == want
