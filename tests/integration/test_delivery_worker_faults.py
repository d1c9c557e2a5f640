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

from eventpipe.bench.stack import LocalPipeline
from eventpipe.embedded_broker import free_port
from eventpipe.settings import Settings
from tests.integration.delivery_support import (
    Poster,
    add_exporter_admin,
    add_posters,
    assert_exactly_once,
    events_table_dir,
    stored_events,
    unwritable,
    wait_for_log,
    wait_until_processed,
)
from tests.integration.export_api_support import ExportClient
from tests.integration.gateway_support import decode_message, running_gateway, topic_records
from tests.integration.test_processor_worker import (
    committed_and_end,
    offsets_by_partition,
    running_worker,
)

pytestmark = pytest.mark.slow

# One request per insert (batch_max_rows below a request's events): the backlog takes hundreds
# of inserts and several commit intervals, so a kill lands mid-stream.
BACKLOG_REQUESTS = 300
EVENTS_PER_REQUEST = 10
RETRY_LINE = re.compile(r"insert of (\d+) rows failed \(attempt (\d+)\), retrying in ([\d.]+) s")


async def post_backlog(settings: Settings, requests: int) -> set[str]:
    """Post ``requests`` requests through a gateway; the markers of the acknowledged events."""
    with running_gateway(settings) as gateway:
        tally = await Poster(gateway.url, add_posters(settings)).post(requests)
    assert tally.answers == {"201": requests}, tally
    return tally.acknowledged


async def kill_mid_stream(settings: Settings, log: Path, backlog: int) -> None:
    """Start a worker on ``backlog`` messages and SIGKILL it once it committed some, not all."""
    with running_worker(settings, log) as worker:
        deadline = time.monotonic() + 60
        while not 0 < (committed := (await committed_and_end(settings))[0]) < backlog:
            assert committed == 0, "the whole backlog was committed before the kill"
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no commit within 60 s: {log.read_text()}"
            await asyncio.sleep(0.05)
        worker.kill()
        worker.wait()


async def committed_request_ids(settings: Settings, messages: int) -> set[str]:
    """Request ids of the messages below the group's committed offsets."""
    committed, _ = await offsets_by_partition(settings)
    records = await topic_records(settings, expected=messages)
    assert len(records) == messages
    return {str(decode_message(r).request_id) for r in records if r.offset < committed[r.partition]}


async def test_a_worker_killed_mid_backlog_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.with_overrides(batch_max_rows=EVENTS_PER_REQUEST, http_port=free_port())
    auditor = add_exporter_admin(settings)
    acknowledged = await post_backlog(settings, BACKLOG_REQUESTS)

    await kill_mid_stream(settings, tmp_path / "worker.log", BACKLOG_REQUESTS)

    committed = await committed_request_ids(settings, BACKLOG_REQUESTS)
    inserted = {request_id for _, request_id, _ in stored_events(settings)}
    # Never a commit past an insert; and more inserted than committed: the kill fell between the
    # insert and the commit of those, which Kafka now delivers again.
    assert committed <= inserted, f"{len(committed - inserted)} committed messages not in the table"
    assert len(committed) < len(inserted) < BACKLOG_REQUESTS, (len(committed), len(inserted))
    print(
        f"at the kill: {len(committed)} of {BACKLOG_REQUESTS} requests committed,"
        f" {len(inserted)} inserted"
    )

    with LocalPipeline.run(settings, tmp_path / "pipeline.log") as pipeline:
        await wait_until_processed(settings, BACKLOG_REQUESTS)
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
            await wait_until_processed(settings, 20)
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
            await wait_until_processed(settings, 40, timeout=30)
            assert second.poll() is None, "the worker must heal without a restart"
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    assert poster.tally.answers == {"201": 40}, poster.tally

    failed = retries(second_log)
    # One batch retried, nothing taken meanwhile: the same rows each time, delays doubling.
    assert {rows for rows, _, _ in failed} == {EVENTS_PER_REQUEST}
    assert [delay for _, _, delay in failed[:4]] == [0.5, 1.0, 2.0, 4.0]
    assert "succeeded on attempt" in second_log.read_text()
    stored = [marker for marker, _, _ in stored_events(settings)]
    assert_exactly_once(stored, poster.tally.acknowledged)
    print(
        f"{len(poster.tally.acknowledged)} events in, {len(stored)} stored; {len(failed)} retries"
    )
