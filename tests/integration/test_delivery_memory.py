"""While ClickHouse refuses inserts, a processor worker's memory stays bounded however large the
backlog on the topic grows: it retries the one batch it holds and takes nothing new.

Real engines: the Tansu broker and ``eventpipe worker`` with its embedded ClickHouse (chDB). The
fault is made at the storage: the events table's directory refuses new parts (see
``unwritable``), so every insert fails until it is writable again.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from eventpipe.settings import Settings
from eventpipe_cli.testing.pipeline import wait_until_committed
from eventpipe_cli.testing.traffic import (
    gateway_like_producer,
    ingest_messages,
    produce_all,
    request_body,
)
from tests.integration.delivery_support import (
    events_table_dir,
    unwritable,
    wait_for_log,
)
from tests.integration.worker_support import running_worker

pytestmark = pytest.mark.slow

EVENTS_PER_REQUEST = 100
WARM_UP_REQUESTS = 20
BACKLOG_REQUESTS = 500  # about 35 KB each
BACKLOG_COPIES = 30  # over 500 MB in all
# Allocator noise between samples; a buffer filling with the backlog would grow by far more.
FLAT_BYTES = 16 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def produce(settings: Settings, requests: int, copies: int = 1) -> int:
    """Put ``copies`` times ``requests`` ingest messages on the events topic; their bytes in all.

    Copies are redeliveries as far as the table is concerned, and cheap to make in bulk."""
    rng = random.Random(requests)
    bodies = [request_body(i, EVENTS_PER_REQUEST, rng) for i in range(requests)]
    messages = ingest_messages(bodies) * copies
    async with gateway_like_producer(settings) as producer:
        await produce_all(producer, settings.events_topic, messages)
    return sum(len(value) for _, value in messages)


async def test_memory_stays_bounded_while_inserts_fail(settings: Settings, tmp_path: Path) -> None:
    """A backlog of over 500 MB arrives while every insert fails: the worker's resident memory
    grows by what its buffers hold, far less than the backlog, and then stays flat, retry after
    retry; once inserts work again, the whole backlog is stored without a restart."""
    settings = settings.with_overrides(batch_max_rows=1000)
    log = tmp_path / "worker.log"
    with running_worker(settings, log) as worker:
        await produce(settings, WARM_UP_REQUESTS)
        await wait_until_committed(settings, messages=WARM_UP_REQUESTS)
        before = rss_bytes(worker.pid)
        with unwritable(events_table_dir(settings)):
            backlog = await produce(settings, BACKLOG_REQUESTS, BACKLOG_COPIES)
            samples = []
            # Retries 3 to 6 are 1, 2, 4 and 8 s apart: time for the fetcher to take all it would.
            for attempt in range(3, 7):
                await wait_for_log(log, f"(attempt {attempt})", worker, timeout=30)
                samples.append(rss_bytes(worker.pid))
        await wait_until_committed(
            settings, messages=WARM_UP_REQUESTS + BACKLOG_REQUESTS * BACKLOG_COPIES, timeout=180
        )
    growth = [sample - before for sample in samples]
    print(
        f"backlog {backlog / 1e6:.0f} MB; worker RSS {before / 1e6:.0f} MB before the fault,"
        f" growth during it: {', '.join(f'{g / 1e6:.0f} MB' for g in growth)}"
    )
    # Measured: 51 MB under a 70 MB backlog, 68-81 MB under 106 and 212 MB in one run, 124-132 MB
    # under 212 MB in another, 73-82 MB under 318 MB on one machine and 149-167 MB on a fresh
    # clone's, 90-101 MB under 531 MB: what the buffers hold (Faust's read-ahead of two batches,
    # the consumer's fetches of up to 1 MiB compressed per partition), not what waits in the
    # topic. A backlog well above twice the largest of those keeps the bound from judging noise.
    assert max(growth) < backlog / 2, (growth, backlog)
    assert samples[-1] - samples[0] < FLAT_BYTES, samples
