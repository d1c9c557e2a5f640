"""The unchanged CVAT SDK logs events against `eventpipe dev`, with a password and a token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cvat_sdk.api_client import ApiClient, Configuration, exceptions, models

from tests.e2e.dev_stack_support import DevStack

pytestmark = pytest.mark.slow


def log_events(config: Configuration) -> models.ClientEvents:
    now = datetime.now(UTC)
    request = models.ClientEventsRequest(
        events=[
            models.EventRequest(scope="load:job", timestamp=now - timedelta(seconds=2), job_id=4),
            models.EventRequest(
                scope="change:frame",
                timestamp=now - timedelta(seconds=1),
                duration=250,
                job_id=4,
                payload='{"frame": 3}',
            ),
        ],
        timestamp=now,
    )
    with ApiClient(config) as client:
        data, response = client.events_api.create(request)
    assert response.status == 201
    return data


def test_sdk_logs_events_with_basic_auth_and_with_a_token(
    start_stack: Callable[[], DevStack],
) -> None:
    stack = start_stack()
    stack.wait_ready()
    stack.cli("users", "add", "carol", "--password", "carol-pass", "--email", "c@x.org")
    token = stack.cli("tokens", "create", "carol")

    with_password = log_events(
        Configuration(host=stack.url, username="carol", password="carol-pass")
    )
    with_token = log_events(Configuration(host=stack.url, access_token=token))

    for answer in (with_password, with_token):
        assert [e.scope for e in answer.events] == ["load:job", "change:frame"]
        assert {e.user_name for e in answer.events} == {"carol"}
        assert {e.source for e in answer.events} == {"client"}
        assert [e.payload for e in answer.events] == ["{}", '{"frame": 3}']

    with pytest.raises(exceptions.UnauthorizedException):
        log_events(Configuration(host=stack.url, username="carol", password="wrong"))
    assert stack.interrupt() == 0
