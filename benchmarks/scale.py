"""``eventpipe bench scale``: end-to-end events/s with one and with two processor workers.

The workers join one consumer group and share the topic's partitions. Each writes its own embedded
ClickHouse (one process per data path); against a ClickHouse server they would share one. The
clock starts once every worker has joined and stored a message of its own, and stops when the
group committed the whole backlog, which it does only after inserting it.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.progress import progress
from eventpipe.settings import Settings
from eventpipe.topics import ensure_topics
from eventpipe_cli.testing.pipeline import (
    scratch_settings,
    start_eventpipe,
    stop_processes,
    wait_until_committed,
)
from eventpipe_cli.testing.traffic import (
    gateway_like_producer,
    ingest_messages,
    produce_all,
    request_body,
)

EVENTS_PER_MESSAGE = 100


async def _time_backlog(settings: Settings, messages: list[tuple[bytes, bytes]]) -> float:
    """Seconds from producing the backlog until the group committed all of it."""
    partitions = settings.topic_partitions
    async with gateway_like_producer(settings) as producer:
        # One message on every partition: it is stored once each worker owns its share.
        await produce_all(
            producer, settings.events_topic, messages[:partitions], list(range(partitions))
        )
        await wait_until_committed(settings, 180, messages=partitions)
        started = time.perf_counter()
        await produce_all(producer, settings.events_topic, messages)
    done = await wait_until_committed(settings, 900, messages=partitions + len(messages))
    return done - started


def run_scale_bench(base: Settings, *, events: int, workers: tuple[int, ...]) -> dict[str, Any]:
    rng = random.Random(3)
    count = max(1, events // EVENTS_PER_MESSAGE)
    progress(f"building {count} messages of {EVENTS_PER_MESSAGE} events ...")
    messages = ingest_messages([request_body(i, EVENTS_PER_MESSAGE, rng) for i in range(count)])
    runs = []
    for processors in workers:
        with (
            tempfile.TemporaryDirectory(prefix="eventpipe-bench-") as scratch,
            scratch_settings(base, Path(scratch)) as settings,
            (Path(scratch) / "workers.log").open("wb") as log,
        ):
            asyncio.run(ensure_topics(settings))
            processes = [
                start_eventpipe(
                    ["worker", "--role", "processor"],
                    settings.with_overrides(data_dir=Path(scratch) / f"worker{i}"),
                    log,
                )
                for i in range(processors)
            ]
            try:
                progress(f"{processors} processor worker(s) on {count} messages ...")
                seconds = asyncio.run(_time_backlog(settings, messages))
            finally:
                stop_processes(processes)
        runs.append(
            {
                "processor_workers": processors,
                "seconds": round(seconds, 3),
                "events_per_s": round(count * EVENTS_PER_MESSAGE / seconds),
            }
        )
    return {
        "events": count * EVENTS_PER_MESSAGE,
        "runs": runs,
        "speedup": round(runs[-1]["events_per_s"] / runs[0]["events_per_s"], 2),
    }


def format_scale_report(report: dict[str, Any]) -> str:
    lines = [f"eventpipe scale-out benchmark ({report['events']:,} events, backlog)"]
    lines += [
        f"  {run['processor_workers']} processor worker(s): {run['events_per_s']:,} events/s "
        f"end to end ({run['seconds']} s)"
        for run in report["runs"]
    ]
    lines.append(f"  speed-up, last / first: {report['speedup']}")
    return "\n".join(lines)
