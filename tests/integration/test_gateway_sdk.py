"""The unchanged cvat-sdk client posts events over real HTTP and parses the 201."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cvat_sdk.api_client import ApiClient, Configuration, exceptions, models

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from tests.integration.gateway_support import (
    RunningGateway,
    decode_message,
    events_topic_size,
    running_gateway,
    topic_records,
)


@pytest.fixture
def gateway(settings: Settings) -> Iterator[RunningGateway]:
    store = IdentityStore(settings.data_dir)
    store.add_user("alice", "alice-pw", email="alice@example.com")
    store.add_org("acme")
    store.add_member("acme", "alice", "maintainer")
    with running_gateway(settings) as running:
        yield running


def events_request() -> models.ClientEventsRequest:
    sent_at = datetime.now(UTC) - timedelta(minutes=3)
    return models.ClientEventsRequest(
        events=[
            models.EventRequest(
                scope="load:job", timestamp=sent_at - timedelta(seconds=2), job_id=4, task_id=2
            ),
            models.EventRequest(
                scope="change:frame",
                timestamp=sent_at - timedelta(seconds=1),
                duration=40,
                payload='{"frame":3}',
            ),
        ],
        timestamp=sent_at,
    )


def test_sdk_with_basic_auth(gateway: RunningGateway, settings: Settings) -> None:
    config = Configuration(host=gateway.url, username="alice", password="alice-pw")
    with ApiClient(config) as client:
        data, response = client.events_api.create(events_request(), x_organization="acme")
    assert response.status == 201
    assert isinstance(data, models.ClientEvents)
    assert [e.scope for e in data.events] == ["load:job", "change:frame"]
    assert {(e.user_name, e.org_slug, e.source) for e in data.events} == {
        ("alice", "acme", "client")
    }
    # Payloads as CVAT stores them: json.dumps(json.loads(payload)), "{}" when none was sent.
    assert [e.payload for e in data.events] == ["{}", '{"frame": 3}']
    # The client's clock was 3 minutes behind: the stored times are moved to the server's.
    assert abs(data.events[0].timestamp - datetime.now(UTC)) < timedelta(seconds=30)

    [record] = asyncio.run(topic_records(settings, expected=1))
    assert [e.job_id for e in decode_message(record).events] == [4, None]


def test_sdk_with_an_access_token(gateway: RunningGateway, settings: Settings) -> None:
    token = IdentityStore(settings.data_dir).create_token("alice")
    with ApiClient(Configuration(host=gateway.url, access_token=token)) as client:
        data, response = client.events_api.create(events_request())
    assert response.status == 201
    assert {(e.user_name, e.org_id) for e in data.events} == {("alice", None)}


def test_sdk_sees_refusals_as_api_exceptions(gateway: RunningGateway, settings: Settings) -> None:
    config = Configuration(host=gateway.url, username="alice", password="wrong")
    with ApiClient(config) as client, pytest.raises(exceptions.UnauthorizedException):
        client.events_api.create(events_request())
    assert asyncio.run(events_topic_size(settings)) == 0
