"""A processor worker that dies, or whose ClickHouse goes away, loses and duplicates nothing.

Real engines throughout: the gateway on a real port, the Tansu broker, ``eventpipe worker`` in a
child process with its embedded ClickHouse (chDB). chDB lives inside the worker, so the test reads
the table only while no worker holds its path.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from eventpipe.clickhouse import clickhouse_client
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.testing.pipeline import LocalPipeline, wait_until_committed
from tests.conformance.cvat_source import run_cvat_init
from tests.integration.delivery_support import (
    Poster,
    add_exporter_admin,
    add_posters,
    assert_exactly_once,
    assigned_partitions,
    events_table_dir,
    eventually,
    stored_events,
    unwritable,
    wait_for_log,
)
from tests.integration.export_api_support import ExportClient
from tests.integration.gateway_support import decode_message, running_gateway, topic_records
from tests.integration.worker_support import (
    committed_and_end,
    partition_offsets,
    running_worker,
)

pytestmark = pytest.mark.slow

# One request per insert (batch_max_rows below a request's events): the backlog takes hundreds
# of inserts and several commit intervals, so a kill lands mid-stream.
BACKLOG_REQUESTS = 300
EVENTS_PER_REQUEST = 10
# Kills, each after the worker's next commit, until one falls between an insert and its commit.
KILL_ATTEMPTS = 5
RETRY_LINE = re.compile(r"insert of (\d+) rows failed \(attempt (\d+)\), retrying in ([\d.]+) s")


async def post_backlog(settings: Settings, requests: int) -> set[str]:
    """Post ``requests`` requests through a gateway; the markers of the acknowledged events."""
    with running_gateway(settings) as gateway:
        tally = await Poster(gateway.url, add_posters(settings)).post(requests)
    assert tally.answers == {"201": requests}, tally
    return tally.acknowledged


async def kill_after_a_commit(settings: Settings, log: Path, backlog: int, after: int) -> None:
    """Start a worker on ``backlog`` messages and SIGKILL it once its group committed more than
    ``after`` of them, not all."""
    with running_worker(settings, log) as worker:
        deadline = time.monotonic() + 60
        while not after < (committed := (await committed_and_end(settings))[0]) < backlog:
            assert committed <= after, "the whole backlog was committed before the kill"
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no commit within 60 s: {log.read_text()}"
            await asyncio.sleep(0.05)
        worker.kill()
        worker.wait()


async def committed_request_ids(settings: Settings, messages: int) -> set[str]:
    """Request ids of the messages below the group's committed offsets."""
    committed, _ = await partition_offsets(settings)
    records = await topic_records(settings, expected=messages)
    assert len(records) == messages
    return {str(decode_message(r).request_id) for r in records if r.offset < committed[r.partition]}


@pytest.mark.parametrize("table", ["eventpipe's", "cvat's"])
async def test_a_worker_killed_mid_backlog_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path, table: str
) -> None:
    settings = settings.with_overrides(batch_max_rows=EVENTS_PER_REQUEST, http_port=free_port())
    if table == "cvat's":
        # An existing CVAT switching over: its backend made cvat.events, with a user's history.
        with clickhouse_client(settings) as client:
            run_cvat_init(client)
    auditor = add_exporter_admin(settings)
    acknowledged = await post_backlog(settings, BACKLOG_REQUESTS)

    # A kill right after a commit can find every inserted message committed: the worker may have
    # been waiting for its next fetch. Then it is restarted and killed after its next commit, until
    # a kill falls between an insert and its commit, which is what Kafka must deliver again.
    committed: set[str] = set()
    inserted: set[str] = set()
    kills = 0
    while kills < KILL_ATTEMPTS:
        kills += 1
        await kill_after_a_commit(
            settings, tmp_path / "worker.log", BACKLOG_REQUESTS, after=len(committed)
        )
        committed = await committed_request_ids(settings, BACKLOG_REQUESTS)
        inserted = {request_id for _, request_id, _ in stored_events(settings)}
        # Never a commit past an insert.
        assert committed <= inserted, f"{len(committed - inserted)} committed messages not stored"
        if len(committed) < len(inserted):
            break
    assert len(committed) < len(inserted) < BACKLOG_REQUESTS, (len(committed), len(inserted))
    print(
        f"at kill {kills}: {len(committed)} of {BACKLOG_REQUESTS} requests committed,"
        f" {len(inserted)} inserted"
    )

    with LocalPipeline.run(settings, tmp_path / "pipeline.log") as pipeline:
        await wait_until_committed(settings, messages=BACKLOG_REQUESTS)
        exported = ExportClient(pipeline.url, auditor).export_rows()
        pipeline.stop()
    assert_exactly_once([row["obj_name"] for row in exported if row["obj_name"]], acknowledged)
    assert_exactly_once([marker for marker, _, _ in stored_events(settings)], acknowledged)
    print(f"{len(acknowledged)} events acknowledged, {len(acknowledged)} exported and stored")


def retries(log: Path) -> list[tuple[int, int, float]]:
    """(rows, attempt, delay) of each failed insert the worker logged."""
    return [
        (int(rows), int(attempt), float(delay))
        for rows, attempt, delay in RETRY_LINE.findall(log.read_text(errors="replace"))
    ]


async def test_clickhouse_unwritable_for_a_while_then_back_loses_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """The fault: the events table's directory refuses new parts (as a full or read-only disk
    would), so every insert fails until it is writable again. A first worker is stopped with
    SIGTERM while it retries; the second is neither restarted nor told when the fault ends: it
    must notice by itself that inserts work again."""
    settings = settings.with_overrides(batch_max_rows=EVENTS_PER_REQUEST)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    users = add_posters(settings)
    with running_gateway(settings) as gateway, ExitStack() as fault:
        poster = Poster(gateway.url, users)
        with running_worker(settings, first_log) as first:
            await poster.post(20)
            await wait_until_committed(settings, messages=20)
            fault.enter_context(unwritable(events_table_dir(settings)))
            await poster.post(40)
            await wait_for_log(first_log, "(attempt 2)", first, timeout=30)
            first.send_signal(signal.SIGTERM)
            assert first.wait(30) == 0
        # Stopping abandoned the failing batch: no offset moved past it.
        assert (await committed_and_end(settings))[0] == 20

        with running_worker(settings, second_log) as second:
            await wait_for_log(second_log, "(attempt 4)", second, timeout=60)
            # Several commit intervals passed since the first failure: nothing moved.
            assert (await committed_and_end(settings))[0] == 20
            fault.close()
            await wait_until_committed(settings, messages=40, timeout=30)
            assert second.poll() is None, "the worker must heal without a restart"
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    assert poster.tally.answers == {"201": 40}, poster.tally

    failed = retries(second_log)
    # One batch retried, nothing taken meanwhile: the same rows each time, delays doubling (each
    # wait up to a quarter longer than the schedule, so that workers do not retry in step).
    assert {rows for rows, _, _ in failed} == {EVENTS_PER_REQUEST}
    for (_, _, delay), scheduled in zip(failed[:4], [0.5, 1.0, 2.0, 4.0], strict=True):
        assert scheduled <= delay <= scheduled * 1.25 + 0.05
    assert "succeeded on attempt" in second_log.read_text()
    stored = [marker for marker, _, _ in stored_events(settings)]
    assert_exactly_once(stored, poster.tally.acknowledged)
    print(
        f"{len(poster.tally.acknowledged)} events in, {len(stored)} stored; {len(failed)} retries"
    )


async def test_one_of_two_processors_killed_while_posting_loses_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """Two ``eventpipe worker --role processor`` in one consumer group, posting all along; one
    gets SIGKILL and its partitions move to the other. Each worker has its own chDB path, since
    the embedded engine admits one process per path: in production both would write to one
    ClickHouse server. So the table is the union of both paths, deduplicated on the table's key
    (request_id, event_seq) as one ReplacingMergeTree would."""
    users = add_posters(settings)
    own = [settings.with_overrides(data_dir=tmp_path / name) for name in ("a", "b")]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    stop_posting = False
    with (
        running_gateway(settings) as gateway,
        running_worker(own[0], logs[0]) as victim,
        running_worker(own[1], logs[1]) as survivor,
    ):
        poster = Poster(gateway.url, users, concurrency=2, pause=0.05)
        posting = asyncio.create_task(poster.post_until(lambda _: stop_posting))

        def split() -> bool:
            held = [assigned_partitions(log) for log in logs]
            return all(held) and held[0] | held[1] == set(range(settings.topic_partitions))

        await eventually(split, "both workers to hold partitions", timeout=60)
        victims = assigned_partitions(logs[0])
        await eventually_committed_on(settings, victims)
        victim.kill()
        victim.wait()
        at_kill = len(poster.tally.acknowledged)

        await eventually(
            lambda: assigned_partitions(logs[1]) == set(range(settings.topic_partitions)),
            "the survivor to take every partition",
            timeout=60,
        )
        # Posting goes on until the survivor has stored requests sent after the kill.
        await wait_until_committed(settings, messages=poster.sent + 10)
        stop_posting = True
        await posting
        await wait_until_committed(settings, messages=poster.tally.answers["201"])
        assert survivor.poll() is None
    assert set(poster.tally.answers) == {"201"}, poster.tally

    by_path = [set(stored_events(path)) for path in own]
    assert all(by_path), [len(rows) for rows in by_path]
    union = by_path[0] | by_path[1]
    assert_exactly_once([marker for marker, _, _ in union], poster.tally.acknowledged)
    print(
        f"{len(poster.tally.acknowledged)} events acknowledged ({at_kill} before the kill);"
        f" stored {len(by_path[0])} by the killed worker, {len(by_path[1])} by the survivor,"
        f" {len(by_path[0] & by_path[1])} by both, {len(union)} in the union"
    )


async def eventually_committed_on(settings: Settings, partitions: set[int]) -> None:
    """Wait until the group committed something on each of ``partitions``."""
    deadline = time.monotonic() + 60
    while True:
        committed, _ = await partition_offsets(settings)
        if all(committed[p] for p in partitions):
            return
        assert time.monotonic() < deadline, f"nothing committed on {partitions} in 60 s"
        await asyncio.sleep(0.2)
