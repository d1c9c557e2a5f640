"""Events posted over HTTP end up, enriched, in ClickHouse, with their working time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.testing.pipeline import LocalPipeline

pytestmark = pytest.mark.slow

# The client's clock runs 30 s behind the server's; the gateway corrects every timestamp by that.
CLIENT_SKEW = timedelta(seconds=-30)


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path) -> Iterator[LocalPipeline]:
    settings = settings.with_overrides(http_port=free_port())
    store = IdentityStore(settings.data_dir)
    store.add_user("alice", "alice-password", email="alice@example.com")
    store.add_org("acme")
    store.add_member("acme", "alice", "worker")
    with LocalPipeline.run(settings, tmp_path / "pipeline.log", worker_role="processor") as running:
        yield running


def client_time(moment: datetime) -> str:
    return (moment + CLIENT_SKEW).isoformat()


def test_posted_events_are_stored_enriched_with_working_time(pipeline: LocalPipeline) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    at = [start + timedelta(seconds=s) for s in (0, 10, 12, 110, 300)]
    body = {
        "events": [
            {"scope": "load:job", "timestamp": client_time(at[0]), "job_id": 7, "task_id": 3},
            {
                "scope": "change:frame",
                "timestamp": client_time(at[1]),
                "duration": 4000,
                "job_id": 7,
                "task_id": 3,
                "payload": '{"to": 12,  "from": 11}',
                "user_id": 999,
                "org_slug": "forged",
            },
            {"scope": "draw:object", "timestamp": client_time(at[2]), "job_id": 7, "task_id": 3},
            # The web client's sign of a user still at work: counted, never stored.
            {"scope": "user:activity", "timestamp": client_time(at[3]), "job_id": 7, "task_id": 3},
            # 190 s after the previous one: a pause, not work.
            {"scope": "save:job", "timestamp": client_time(at[4]), "job_id": 8, "task_id": 3},
        ],
        "previous_event": {
            "scope": "load:job",
            "timestamp": client_time(start - timedelta(seconds=5)),
            "job_id": 7,
            "task_id": 3,
        },
        "timestamp": client_time(datetime.now(UTC)),
    }
    answer = httpx.post(
        f"{pipeline.url}/api/events",
        json=body,
        auth=("alice", "alice-password"),
        headers={"X-Organization": "acme"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    echoed = answer.json()["events"]
    # CVAT's answer holds user:activity too.
    assert [e["scope"] for e in echoed] == [e["scope"] for e in body["events"]]
    assert [e["user_name"] for e in echoed] == ["alice"] * 5
    # As CVAT's serializer writes it: json.dumps(json.loads(payload)); "{}" for none.
    assert [e["payload"] for e in echoed] == ["{}", '{"to": 12, "from": 11}', "{}", "{}", "{}"]

    pipeline.wait_until_stored()
    with pipeline.stopped_worker_clickhouse() as client:
        rows = client.query(
            "SELECT scope, timestamp, duration, job_id, user_name, user_email, org_slug, source,"
            " payload, remote_addr FROM events ORDER BY timestamp, event_seq"
        ).named_results()
        rows = list(rows)

    client_rows = [r for r in rows if r["scope"] != "send:working_time"]
    # Which of the posted events are stored: all but user:activity.
    kept = [i for i, e in enumerate(echoed) if e["scope"] != "user:activity"]
    assert [r["scope"] for r in client_rows] == [
        "load:job",
        "change:frame",
        "draw:object",
        "save:job",
    ]
    # Every row carries the caller's address as CVAT records it (here the connection's peer).
    assert {r["remote_addr"] for r in rows} == {"127.0.0.1"}
    for row, sent_at in zip(client_rows, [at[i] for i in kept], strict=True):
        # Stored within a second of when the event really happened (the skew is corrected; the
        # remainder is the request's time in flight).
        stored = row["timestamp"].replace(tzinfo=UTC)
        assert abs(stored - sent_at) < timedelta(seconds=1), (stored, sent_at)
        assert (row["user_name"], row["user_email"]) == ("alice", "alice@example.com")
        assert row["org_slug"] == "acme"
        assert row["source"] == "client"
    assert [r["payload"] for r in client_rows] == [echoed[i]["payload"] for i in kept]

    working = {r["job_id"]: r for r in rows if r["scope"] == "send:working_time"}
    # Job 7: 5 s from the previous event to load:job, 10 s to change:frame, its 4 s of
    # duration (which covers draw:object at +12 s), 96 s to user:activity: 115 s. The 190 s
    # pause counts for nobody, and save:job, the last event, adds nothing to job 8.
    assert set(working) == {7}
    assert working[7]["duration"] == 115_000
    work_payload = orjson.loads(working[7]["payload"])
    assert work_payload["working_time"] == 115_000
    assert work_payload["request"]["user_agent"].startswith("python-httpx/")
    assert working[7]["user_name"] == "alice"
    assert working[7]["org_slug"] == "acme"
