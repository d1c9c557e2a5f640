"""Without a broker the gateway starts, reports unready and answers 503 in bounded time; it
recovers by itself when a broker comes (back). It never answers 201 for unacknowledged events."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import EmbeddedBroker, free_port, start_broker
from eventpipe_cli.testing.pipeline import wait_until_committed
from tests.integration.delivery_support import (
    Poster,
    add_posters,
    assert_exactly_once,
    eventually,
    stored_events,
)
from tests.integration.gateway_support import (
    RunningGateway,
    decode_message,
    events_topic_size,
    running_gateway,
    topic_records,
    wait_ready_status,
)
from tests.integration.worker_support import running_worker

PRODUCE_TIMEOUT = 2.0
BODY = {
    "events": [{"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z", "job_id": 1}],
    "timestamp": "2026-01-01T00:00:01Z",
}


@pytest.fixture
def own_broker_settings(settings: Settings) -> Settings:
    """Settings pointing at a port of our own, where a broker may be started and stopped."""
    IdentityStore(settings.data_dir).add_user("alice", "alice-pw")
    return settings.with_overrides(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", produce_timeout_seconds=PRODUCE_TIMEOUT
    )


@pytest.fixture
def broker_port(own_broker_settings: Settings) -> int:
    return int(own_broker_settings.kafka_bootstrap_servers.rsplit(":", 1)[1])


@pytest.fixture
def brokers() -> Iterator[list[EmbeddedBroker]]:
    started: list[EmbeddedBroker] = []
    yield started
    for broker in started:
        broker.stop()


def post(gateway: RunningGateway) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = httpx.post(
        f"{gateway.url}/api/events", json=BODY, auth=("alice", "alice-pw"), timeout=30
    )
    return response, time.monotonic() - began


def assert_unavailable(gateway: RunningGateway) -> None:
    response, elapsed = post(gateway)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert "broker" in response.json()["error"]
    assert elapsed < PRODUCE_TIMEOUT + 1.0


async def assert_posts_reach_kafka(gateway: RunningGateway, settings: Settings) -> None:
    """The gateway has recovered: a post is acknowledged and its message is in the topic."""
    response, _ = post(gateway)
    assert response.status_code == 201, response.text
    [record] = await topic_records(settings, expected=1)
    assert decode_message(record).events[0].job_id == 1


async def test_starts_without_a_broker_and_recovers_when_one_appears(
    own_broker_settings: Settings, broker_port: int, brokers: list[EmbeddedBroker]
) -> None:
    with running_gateway(own_broker_settings, wait_ready=False) as gateway:
        live = httpx.get(f"{gateway.url}/health/live")
        assert live.status_code == 200
        ready = httpx.get(f"{gateway.url}/health/ready")
        assert (ready.status_code, ready.json()["status"]) == (503, "unavailable")
        assert_unavailable(gateway)

        brokers.append(start_broker(port=broker_port))
        wait_ready_status(gateway, 200)
        await assert_posts_reach_kafka(gateway, own_broker_settings)


async def test_a_broker_that_goes_away_gives_503_and_its_return_recovers(
    own_broker_settings: Settings, broker_port: int, brokers: list[EmbeddedBroker]
) -> None:
    brokers.append(start_broker(port=broker_port))
    with running_gateway(own_broker_settings) as gateway:
        assert post(gateway)[0].status_code == 201

        brokers[0].stop()
        # Whether the gateway already noticed (fast 503) or waits for the acknowledgement
        # (503 after the produce timeout), the answer is a bounded 503, never a 201.
        assert_unavailable(gateway)
        wait_ready_status(gateway, 503)
        assert_unavailable(gateway)

        # The embedded broker restarts empty: the gateway recreates the topic and carries on.
        brokers.append(start_broker(port=broker_port))
        wait_ready_status(gateway, 200)
        await assert_posts_reach_kafka(gateway, own_broker_settings)


async def test_full_producer_buffer_is_503_at_once(settings: Settings) -> None:
    IdentityStore(settings.data_dir).add_user("alice", "alice-pw")
    with running_gateway(settings.with_overrides(producer_buffer_bytes=200)) as gateway:
        response, elapsed = post(gateway)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "unacknowledged" in response.json()["error"]
        assert elapsed < 1.0
    assert await events_topic_size(settings) == 0


def is_ready(gateway: RunningGateway, status: int) -> Callable[[], bool]:
    return lambda: httpx.get(f"{gateway.url}/health/ready").status_code == status


@pytest.mark.slow
async def test_a_frozen_broker_gives_503_never_201_and_every_201_is_stored(
    own_broker_settings: Settings, broker_port: int, brokers: list[EmbeddedBroker], tmp_path: Path
) -> None:
    """The broker stops answering while clients post (SIGSTOP: a hung broker or a network
    partition), then resumes with its data (SIGCONT), so what it acknowledged can be counted
    through to ClickHouse. A request answered 503 after a timeout may still land when the broker
    resumes: stored though never acknowledged, which is why a client retry can duplicate it."""
    settings = own_broker_settings
    brokers.append(start_broker(port=broker_port))
    stop_posting = False
    with running_gateway(settings) as gateway, running_worker(settings, tmp_path / "worker.log"):
        poster = Poster(gateway.url, add_posters(settings), concurrency=2, pause=0.05)
        posting = asyncio.create_task(poster.post_until(lambda _: stop_posting))
        await eventually(lambda: poster.tally.answers["201"] >= 20, "201s", timeout=30)

        brokers[0].process.send_signal(signal.SIGSTOP)
        frozen_from = poster.sent
        await eventually(is_ready(gateway, 503), "the gateway to notice", timeout=30)
        noticed_at = poster.sent
        await eventually(
            lambda: (
                set(range(frozen_from, noticed_at)) <= poster.tally.by_request.keys()
                and poster.sent > noticed_at + 20
            ),
            "the requests sent to the frozen broker to be answered",
            timeout=30,
        )
        resumed_from = poster.sent
        brokers[0].process.send_signal(signal.SIGCONT)

        await eventually(is_ready(gateway, 200), "the gateway to recover", timeout=30)
        recovered_at = poster.sent

        def acknowledged_since_recovery() -> int:
            answers = poster.tally.by_request.items()
            return sum(n >= recovered_at and answer == "201" for n, answer in answers)

        await eventually(lambda: acknowledged_since_recovery() >= 20, "201s again", timeout=30)
        stop_posting = True
        await posting
        arrived = await topic_records(settings, len(poster.tally.by_request), timeout=3)
        await wait_until_committed(settings, messages=len(arrived))

    while_frozen = {poster.tally.by_request[n] for n in range(frozen_from, resumed_from)}
    assert while_frozen == {"503"}, while_frozen
    assert poster.tally.slowest_refusal < PRODUCE_TIMEOUT + 1.0
    assert set(poster.tally.answers) == {"201", "503"}, poster.tally
    stored = [marker for marker, _, _ in stored_events(settings)]
    assert_exactly_once(stored, poster.tally.acknowledged, may_also_hold=poster.tally.refused)
    print(
        f"{poster.tally}; {len(stored)} events stored,"
        f" {len(set(stored) & poster.tally.refused)} of them answered 503"
    )
