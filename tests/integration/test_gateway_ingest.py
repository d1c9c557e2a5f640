"""POST /api/events over real HTTP against a real broker: what is accepted reaches Kafka enriched,
what is refused answers a JSON error naming the problem and reaches nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from tests.integration.gateway_support import (
    RunningGateway,
    decode_message,
    events_topic_size,
    running_gateway,
    topic_records,
)

MAX_BODY = 64 * 1024
ALICE = ("alice", "alice-pw")


@dataclass
class World:
    gateway: RunningGateway
    settings: Settings
    alice_token: str
    acme_id: int
    other_id: int
    alice_id: int
    root_id: int


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    settings = settings.with_overrides(max_body_bytes=MAX_BODY)
    store = IdentityStore(settings.data_dir)
    alice = store.add_user(*ALICE, email="alice@example.com")
    store.add_user("bob", "bob-pw")
    root = store.add_user("root", "root-pw", admin=True)
    acme = store.add_org("acme")
    other = store.add_org("other")
    store.add_member("acme", "alice", "worker")
    store.add_member("other", "bob", "owner")
    with running_gateway(settings) as gateway:
        yield World(
            gateway, settings, store.create_token("alice"), acme.id, other.id, alice.id, root.id
        )


@pytest.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.gateway.url, auth=ALICE) as client:
        yield client


def event(**fields: object) -> dict[str, object]:
    return {"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z", **fields}


def payload(*events: dict[str, object], **extra: object) -> dict[str, object]:
    return {"events": list(events), "timestamp": "2026-01-01T00:00:05Z", **extra}


# --- accepted ------------------------------------------------------------------------------------


async def test_accepted_request_reaches_kafka_enriched(
    world: World, http: httpx.AsyncClient
) -> None:
    sent_at = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)  # the client's clock is far behind
    body = {
        "events": [
            event(
                timestamp="2026-01-01T00:00:01.5Z",
                job_id=11,
                payload='{"z": 1, "a": {"y": [1, 2], "b": null}}',
                user_id=999,
                user_name="mallory",
                user_email="m@evil.example",
                org_id=12345,
                org_slug="evil",
                source="client",
            ),
            event(scope="change:frame", timestamp="2026-01-01T02:00:02+02:00", duration=250),
        ],
        "previous_event": event(scope="save:job", timestamp="2026-01-01T00:00:00.25"),
        "timestamp": "2026-01-01T00:00:05Z",
    }
    headers = {
        "X-Organization": "acme",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:146.0) Firefox/146.0",
    }
    response = await http.post("/api/events", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"

    [record] = await topic_records(world.settings, expected=1)
    assert record.key == b"org:%d" % world.acme_id
    message = decode_message(record)
    skew = message.received_at - sent_at
    assert skew > timedelta(days=300)
    assert [e.timestamp for e in message.events] == [
        datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC) + skew,
        datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC) + skew,
    ]
    # The working time counts from the previous event, 1.25 s before the first (for the previous
    # event's job, none), then to the end of the last, a change:frame of 250 ms (for job 11).
    derived = [row for row in message.rows if row["scope"] == "send:working_time"]
    assert [(row["job_id"], row["duration"]) for row in derived] == [(None, 1250), (11, 750)]
    request_info = orjson.loads(derived[0]["payload"])["request"]
    assert request_info == {"id": str(message.request_id), "user_agent": headers["User-Agent"]}
    assert (message.identity.user_id, message.identity.org_slug) == (world.alice_id, "acme")
    for e in message.events:
        assert (e.source, e.user_id, e.user_name, e.user_email, e.org_id, e.org_slug) == (
            "client",
            world.alice_id,
            "alice",
            "alice@example.com",
            world.acme_id,
            "acme",
        )
    # As CVAT's serializer writes it: json.dumps(json.loads(payload)); "{}" when left out.
    assert [e.payload for e in message.events] == ['{"z": 1, "a": {"y": [1, 2], "b": null}}', "{}"]
    assert (message.events[0].job_id, message.events[1].duration) == (11, 250)
    assert {row["remote_addr"] for row in message.rows} == {"127.0.0.1"}

    answer = response.json()
    # CVAT's answer: no previous_event, and the caller's address only on what is stored.
    assert set(answer) == {"events", "timestamp"}
    assert not any("remote_addr" in e for e in answer["events"])
    assert datetime.fromisoformat(answer["timestamp"]) == sent_at
    # Each row starts with its event as answered.
    for answered, row in zip(answer["events"], message.rows, strict=False):
        assert row.items() >= answered.items()


async def test_web_client_scopes_of_cvat_2_73_are_accepted_and_echoed(
    world: World, http: httpx.AsyncClient
) -> None:
    # What today's web client sends on a job's page: load:workspace on opening it, user:activity
    # while the user works. Both are accepted; user:activity counts for the working time only.
    body = payload(
        event(scope="load:workspace", job_id=3, payload='{"location": "/tasks/1/jobs/3"}'),
        event(scope="user:activity", job_id=3, payload="{}"),
    )
    response = await http.post("/api/events", json=body)
    assert response.status_code == 201, response.text
    assert [e["scope"] for e in response.json()["events"]] == ["load:workspace", "user:activity"]
    [record] = await topic_records(world.settings, expected=1)
    assert [e.scope for e in decode_message(record).events] == ["load:workspace"]


async def test_the_answer_holds_the_fields_cvat_answers(
    world: World, http: httpx.AsyncClient
) -> None:
    # CVAT answers what its serializer validated: the fields sent (a null one too), its default
    # duration, and what it sets (source, payload, user and organization).
    body = payload(event(job_id=3), event(obj_name=None, duration=5))
    response = await http.post("/api/events", json=body)
    assert response.status_code == 201, response.text
    stamped = {"source", "payload", "user_id", "user_name", "user_email", "org_id", "org_slug"}
    assert [set(e) for e in response.json()["events"]] == [
        {"scope", "timestamp", "duration", "job_id", *stamped},
        {"scope", "timestamp", "duration", "obj_name", *stamped},
    ]
    # What the client left out is null where it is stored.
    [record] = await topic_records(world.settings, expected=1)
    assert [e.job_id for e in decode_message(record).events] == [3, None]


@pytest.mark.parametrize(
    ("num_proxies", "forwarded_for", "expected"),
    [
        (1, ["203.0.113.5, 198.51.100.7"], "198.51.100.7"),
        (2, ["203.0.113.5, 198.51.100.7"], "203.0.113.5"),
        # Two header lines are one list, as Django reads them.
        (2, ["203.0.113.5", "198.51.100.7"], "203.0.113.5"),
        (1, [], "127.0.0.1"),
        # No proxy counted: the peer, as uvicorn reports it. Like CVAT's uvicorn, it takes the
        # header's address from a peer in FORWARDED_ALLOW_IPS (127.0.0.1 by default, as here).
        (0, ["203.0.113.5, 198.51.100.7"], "198.51.100.7"),
    ],
)
async def test_remote_addr_is_the_address_cvat_records_behind_proxies(
    settings: Settings, num_proxies: int, forwarded_for: list[str], expected: str
) -> None:
    settings = settings.with_overrides(num_proxies=num_proxies)
    IdentityStore(settings.data_dir).add_user(*ALICE)
    headers = [("X-Forwarded-For", value) for value in forwarded_for]
    with running_gateway(settings) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, auth=ALICE) as client:
            response = await client.post("/api/events", json=payload(event()), headers=headers)
    assert response.status_code == 201, response.text
    [record] = await topic_records(settings, expected=1)
    assert decode_message(record).remote_addr == expected


@pytest.mark.parametrize("codec", ["none", "zstd"])
async def test_other_kafka_compressions_deliver_the_same_message(
    settings: Settings, codec: str
) -> None:
    """lz4, the default, is what every other test uses."""
    settings = settings.with_overrides(kafka_compression=codec)
    IdentityStore(settings.data_dir).add_user(*ALICE)
    with running_gateway(settings) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, auth=ALICE) as client:
            response = await client.post("/api/events", json=payload(event(job_id=7)))
    assert response.status_code == 201, response.text
    [record] = await topic_records(settings, expected=1)
    [answered] = response.json()["events"]
    assert decode_message(record).rows[0].items() >= answered.items()


async def test_sandbox_requests_are_keyed_by_user(world: World, http: httpx.AsyncClient) -> None:
    response = await http.post("/api/events", json=payload(event(org_id=5, org_slug="acme")))
    assert response.status_code == 201
    [record] = await topic_records(world.settings, expected=1)
    assert record.key == b"user:%d" % world.alice_id
    message = decode_message(record)
    assert (message.identity.org_id, message.events[0].org_id, message.events[0].org_slug) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
async def test_api_tokens_authenticate(world: World, scheme: str) -> None:
    async with httpx.AsyncClient(base_url=world.gateway.url) as client:
        response = await client.post(
            "/api/events",
            json=payload(event()),
            headers={"Authorization": f"{scheme} {world.alice_token}"},
            params={"org_id": world.acme_id},
        )
    assert response.status_code == 201, response.text
    assert response.json()["events"][0]["user_name"] == "alice"
    assert response.json()["events"][0]["org_slug"] == "acme"


async def test_admins_may_post_in_an_org_they_do_not_belong_to(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.gateway.url, auth=("root", "root-pw")) as client:
        response = await client.post("/api/events?org=other", json=payload(event()))
    assert response.status_code == 201, response.text
    [record] = await topic_records(world.settings, expected=1)
    assert record.key == b"org:%d" % world.other_id
    assert decode_message(record).identity.user_id == world.root_id


async def test_a_request_without_events_is_201_and_produces_nothing(
    world: World, http: httpx.AsyncClient
) -> None:
    cases = [
        (payload(), "2026-01-01T00:00:05Z"),
        (payload(previous_event=event()), "2026-01-01T00:00:05Z"),
        ({"timestamp": "2026-01-01T00:00:00Z"}, "2026-01-01T00:00:00Z"),
    ]
    for body, timestamp in cases:
        response = await http.post("/api/events", json=body)
        assert response.status_code == 201
        assert response.json() == {"events": [], "timestamp": timestamp}
    assert await events_topic_size(world.settings) == 0


async def test_health_probes(world: World, http: httpx.AsyncClient) -> None:
    assert (await http.get("/health/live")).json() == {"status": "live"}
    ready = await http.get("/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    missing = await http.get("/api/nothing-here")
    assert (missing.status_code, missing.json()["field"]) == (404, None)


# --- refused -------------------------------------------------------------------------------------


@dataclass
class Refusal:
    status: int
    field: str | None
    words: str
    index: int | None = None


def json_body(value: object) -> dict[str, object]:
    return {"content": orjson.dumps(value), "headers": {"Content-Type": "application/json"}}


async def chunks(total: int) -> AsyncIterator[bytes]:
    yield b'{"events": [], "timestamp": "2026-01-01T00:00:00Z", "pad": "'
    for _ in range(total // 4096):
        yield b"x" * 4096
    yield b'"}'


REFUSALS: dict[str, tuple[dict[str, object], Refusal]] = {
    "no credentials": (
        {**json_body(payload(event())), "auth": None},
        Refusal(401, None, "authentication required"),
    ),
    "wrong password": (
        {**json_body(payload(event())), "auth": ("alice", "nope")},
        Refusal(401, None, "invalid credentials"),
    ),
    "unknown token": (
        {
            **json_body(payload(event())),
            "auth": None,
            "headers": {"Content-Type": "application/json", "Authorization": "Bearer nope"},
        },
        Refusal(401, None, "invalid credentials"),
    ),
    "not a member": (
        {
            **json_body(payload(event())),
            "headers": {"Content-Type": "application/json", "X-Organization": "other"},
        },
        Refusal(403, "X-Organization", "not a member of organization 'other'"),
    ),
    "unknown org": (
        {**json_body(payload(event())), "params": {"org": "ghost"}},
        Refusal(404, "org", "organization 'ghost' does not exist"),
    ),
    "org_id of a foreign org": (
        {**json_body(payload(event())), "params": {"org_id": "2"}},
        Refusal(403, "org_id", "not a member of organization 'other'"),
    ),
    "org_id and slug together": (
        {**json_body(payload(event())), "params": {"org_id": "1", "org": "acme"}},
        Refusal(400, "org_id", "not both"),
    ),
    "wrong field type": (
        json_body(payload(event(), event(), event(), event(job_id="7"))),
        Refusal(400, "events[3].job_id", "Expected `int | null`, got `str`", index=3),
    ),
    "unknown scope": (
        json_body(payload(event(), event(scope="send:working_time"))),
        Refusal(400, "events[1].scope", "'send:working_time' is not allowed", index=1),
    ),
    "payload not json": (
        json_body(payload(event(payload="{oops"))),
        Refusal(400, "events[0].payload", "valid JSON", index=0),
    ),
    "payload not a string": (
        json_body(payload(event(payload={"a": 1}))),
        Refusal(400, "events[0].payload", "Expected `str`", index=0),
    ),
    "payload null": (
        json_body(payload(event(payload=None))),
        Refusal(400, "events[0].payload", "got `null`", index=0),
    ),
    "source other than client": (
        json_body(payload(event(), event(source="server"))),
        Refusal(400, "events[1].source", "'server'", index=1),
    ),
    "count over the column's range": (
        json_body(payload(event(count=65536))),
        Refusal(400, "events[0].count", "<= 65535", index=0),
    ),
    "bad event timestamp": (
        json_body(payload(event(timestamp="2026-02-30T00:00:00Z"))),
        Refusal(400, "events[0].timestamp", "RFC3339", index=0),
    ),
    "missing request timestamp": (
        json_body({"events": [event()]}),
        Refusal(400, "timestamp", "missing required field `timestamp`"),
    ),
    "not json content type": (
        {"content": orjson.dumps(payload(event())), "headers": {"Content-Type": "text/plain"}},
        Refusal(415, None, "application/json"),
    ),
    "declared too large": (
        json_body(payload(event(obj_val="x" * MAX_BODY))),
        Refusal(413, None, f"exceeds {MAX_BODY} bytes"),
    ),
    "chunked too large": (
        {"content": chunks(2 * MAX_BODY), "headers": {"Content-Type": "application/json"}},
        Refusal(413, None, f"exceeds {MAX_BODY} bytes"),
    ),
    "malformed json": (
        {"content": b'{"events": [', "headers": {"Content-Type": "application/json"}},
        Refusal(400, None, "not valid JSON"),
    ),
    "invalid utf-8": (
        {
            "content": orjson.dumps(payload(event())).replace(b"load:job", b"load:\xff"),
            "headers": {"Content-Type": "application/json"},
        },
        Refusal(400, None, "not valid JSON"),
    ),
}


@pytest.mark.parametrize("case", REFUSALS.keys())
async def test_refusals_answer_json_naming_the_problem_and_reach_nothing(
    world: World, http: httpx.AsyncClient, case: str
) -> None:
    request, expected = REFUSALS[case]
    # auth=None in a case sends no client credentials.
    response = await http.post("/api/events", **request)  # type: ignore[arg-type]

    assert response.status_code == expected.status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["field"] == expected.field
    assert expected.words in body["error"]
    assert body.get("index") == expected.index
    if expected.status == 401:
        assert response.headers["www-authenticate"] == 'Basic realm="eventpipe"'
    assert await events_topic_size(world.settings) == 0
