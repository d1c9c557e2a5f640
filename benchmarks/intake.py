"""``eventpipe bench intake``: the intake for CVAT's server against raw produce of the same data.

One run, on one broker of its own: an ``eventpipe gateway`` child process serves the intake, and
the load generator posts batches as python-logstash-async's ``HttpTransport`` posts them for CVAT
(a JSON array of events rendered as CVAT renders them) over a fixed number of connections. The
baseline is the raw aiokafka produce rate of the same batches as the intake's Kafka messages,
the median of runs taken just before and just after.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.host_cpu import CpuTicks, steal_percent
from benchmarks.ingest import raw_produce_rates
from benchmarks.load_generator import build_post, run_load
from benchmarks.progress import progress
from eventpipe.errors import CommandError
from eventpipe.settings import Settings
from eventpipe.table_rows import intake_rows
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.testing.pipeline import (
    scratch_settings,
    start_eventpipe,
    stop_processes,
    wait_ready,
)
from ingest_gateway.intake.batch import decode_batch

_SERVER_SCOPES = ("create:shapes", "update:shapes", "update:job", "send:working_time")
_CLIENT_SCOPE = "change:frame"


def cvat_batch(batch_index: int, size: int, rng: random.Random) -> bytes:
    """A batch as CVAT's handler posts it: its server events and the client events it forwards."""
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=batch_index)
    events = []
    for i in range(size):
        server = i % 2 == 0
        job_id = 1000 + rng.randrange(97)
        events.append(
            {
                "scope": _SERVER_SCOPES[i % len(_SERVER_SCOPES)] if server else _CLIENT_SCOPE,
                "timestamp": str((start + timedelta(milliseconds=20 * i)).timestamp()),
                "source": "server" if server else "client",
                "payload": orjson.dumps(
                    {"request": {"id": str(uuid.UUID(int=rng.getrandbits(128)))}}
                    if server
                    else {"frame": rng.randrange(5000), "points": [1.5, 2.5, 30.0]}
                ).decode(),
                "obj_name": "shape",
                "obj_id": rng.randrange(1, 10**6),
                "count": 1,
                "duration": rng.randrange(500),
                "project_id": 7,
                "task_id": 100 + job_id // 10,
                "job_id": job_id,
                "user_id": 1 + i % 8,
                "user_name": f"annotator{i % 8}",
                "user_email": f"annotator{i % 8}@example.com",
                "org_id": 3,
                "org_slug": "acme",
                "access_token_id": None,
                "remote_addr": "10.0.0.8",
                # A key CVAT adds that the table does not hold.
                "request_id": "7c1fa9d4",
            }
        )
    return orjson.dumps(events)


def intake_messages(bodies: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The Kafka messages the intake produces for these batches (for the raw baseline)."""
    now = datetime.now(UTC)
    messages = []
    for body in bodies:
        batch = decode_batch(body, Settings.intake_max_events_per_batch)
        messages.append((uuid.uuid4().bytes, intake_rows(now, batch.valid).rendered().message()))
    return messages


def run_intake_bench(base: Settings, events: int, batch: int, concurrency: int) -> dict[str, Any]:
    rng = random.Random(42)
    # One more batch than asked for: the first warms the intake up and is not measured.
    batches = max(1, events // batch) + 1
    progress(f"building {batches} CVAT batches of {batch} events ...")
    bodies = [cvat_batch(i, batch, rng) for i in range(batches)]
    messages = intake_messages(bodies[1:])
    events_total = len(messages) * batch
    with (
        tempfile.TemporaryDirectory(prefix="eventpipe-bench-") as scratch,
        scratch_settings(
            base, Path(scratch), intake_port=free_port(), intake_host="127.0.0.1"
        ) as settings,
    ):
        progress("measuring the raw produce baseline on the same data ...")
        before = asyncio.run(raw_produce_rates(settings, messages, events_total))
        url = f"http://127.0.0.1:{settings.intake_port}"
        posts = [build_post(f"{url}/", body, {}) for body in bodies]
        with (Path(scratch) / "gateway.log").open("wb") as log:
            gateway = start_eventpipe(["gateway"], settings, log)
            try:
                wait_ready(url, 60, [gateway])
                warm_up = asyncio.run(run_load(url, posts[:1], 1))
                if warm_up.count(200) != 1:
                    raise CommandError(f"the warm-up batch was answered {warm_up.statuses}")
                progress(f"posting {len(posts) - 1} batches with {concurrency} connections ...")
                ticks_before = CpuTicks.now()
                load = asyncio.run(run_load(url, posts[1:], concurrency))
                ticks_after = CpuTicks.now()
            finally:
                stop_processes([gateway])
        progress("measuring the raw produce baseline again ...")
        after = asyncio.run(raw_produce_rates(settings, messages, events_total))
    raw_produce = statistics.median(before + after)
    accepted = load.count(200) * batch
    rate = accepted / load.elapsed if load.elapsed else 0.0
    return {
        "events_posted": events_total,
        "events_accepted": accepted,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "concurrency": concurrency,
        "events_per_batch": batch,
        "intake_events_per_s": round(rate),
        "latency_p50_ms": round(load.percentile(0.50) * 1000, 2),
        "latency_p99_ms": round(load.percentile(0.99) * 1000, 2),
        "raw_produce_events_per_s": round(raw_produce),
        "ratio_intake_to_raw_produce": round(rate / raw_produce, 3),
        "host_steal_percent": steal_percent(ticks_before, ticks_after),
    }


def format_intake_report(report: dict[str, Any]) -> str:
    lines = [
        "eventpipe intake benchmark (CVAT's server -> intake -> Kafka)",
        f"  events posted / accepted: {report['events_posted']} / {report['events_accepted']}",
        f"  HTTP statuses: {report['statuses']}",
        f"  intake: {report['intake_events_per_s']:,} events/s ({report['concurrency']} "
        f"connections, {report['events_per_batch']} events/batch)",
        f"  batch latency: p50 {report['latency_p50_ms']} ms, p99 {report['latency_p99_ms']} ms",
        f"  raw aiokafka produce of the same messages: {report['raw_produce_events_per_s']:,}"
        " events/s",
        f"  ratio intake / raw produce: {report['ratio_intake_to_raw_produce']}",
    ]
    if report["host_steal_percent"] is not None:
        lines.append(f"  CPU time the host took (steal) meanwhile: {report['host_steal_percent']}%")
    return "\n".join(lines)
