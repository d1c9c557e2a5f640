"""``eventpipe bench ingest``: acknowledged and end-to-end ingest rates against raw baselines.

One run measures, on the same machine and data:
- the gateway: acknowledged events/s and request latency under a fixed number of connections;
- end to end: the time until the processor committed every offset, which, since it commits only
  after the rows are inserted, is the time until every acknowledged event is in ClickHouse;
- the raw aiokafka produce rate and the raw clickhouse-connect insert rate of the same data,
  each the median of runs taken just before and just after the pipeline's.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.host_cpu import CpuTicks, steal_percent
from benchmarks.load_generator import LoadResult, build_post, run_load
from benchmarks.process_cpu import cpu_seconds, listening_process, micros_per_event
from benchmarks.progress import progress
from eventpipe.clickhouse import clickhouse_client
from eventpipe.contracts import (
    WORKING_TIME_SCOPE,
)
from eventpipe.errors import CommandError
from eventpipe.events_table import COLUMN_TYPES, COLUMNS, TABLE
from eventpipe.settings import Settings
from eventpipe_cli.testing.pipeline import LocalPipeline, scratch_settings, user_tokens
from eventpipe_cli.testing.traffic import (
    TENANTS,
    gateway_like_producer,
    ingest_messages,
    produce_all,
    request_body,
)
from stream_processors.decoding import decode_ingest_message
from stream_processors.rows import Message, Rows, build_rows, row_count

# A baseline is the median of several runs, half of them just before the pipeline is measured and
# half just after. A shared machine's speed drifts over tens of seconds; a baseline taken on one
# side only carried that drift into every ratio, bracketing it cancels the part that is steady
# over the run.
BASELINE_RUNS_EACH_SIDE = 2
# A raw produce run sends the data again until this much time has passed: with lz4 at level 1,
# one pass of 600,000 events took under a second, short enough for a passing stall of the shared
# machine to count for much (five runs' baselines at one level spanned 641k to 975k events/s).
MIN_RAW_PRODUCE_SECONDS = 3.0
RAW_INSERT_TABLE = "raw_insert"


@dataclass
class Baselines:
    """The rates of the raw runs on one side of the pipeline's, in events (rows) per second."""

    produce: list[float]
    insert: list[float]


@dataclass
class IngestBenchOptions:
    events: int
    concurrency: int
    batch: int
    url: str | None = None
    token: str | None = None
    gateway_processes: int = 1


async def raw_produce_rates(
    settings: Settings, messages: list[tuple[bytes, bytes]], events: int
) -> list[float]:
    """The rates of ``BASELINE_RUNS_EACH_SIDE`` runs, each into a topic of its own, and each
    sending the ``events`` in ``messages`` as many times as ``MIN_RAW_PRODUCE_SECONDS`` take."""
    rates = []
    async with gateway_like_producer(settings) as producer:
        for _ in range(BASELINE_RUNS_EACH_SIDE):
            topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
            await produce_all(producer, topic, messages[:1])  # creates the topic, not timed
            started = time.perf_counter()
            passes = 0
            while not passes or time.perf_counter() - started < MIN_RAW_PRODUCE_SECONDS:
                await produce_all(producer, topic, messages)
                passes += 1
            rates.append(passes * events / (time.perf_counter() - started))
    return rates


# A batch as the engine takes it fastest: one list of values per column, in COLUMNS order.
Columns = list[list[Any]]


def _insert_batches(messages: list[tuple[bytes, bytes]], batch_rows: int) -> list[Columns]:
    """The rows the processor would insert for ``messages``, in batches of its size, prepared as
    columns (not timed): the raw baseline is the engine's own cost for these rows."""
    decoded = [decode_ingest_message(value) for _, value in messages]
    batches: list[Columns] = []
    chunk: list[Message] = []
    rows_in_chunk = 0
    for message in decoded:
        chunk.append(message)
        rows_in_chunk += row_count(message)
        if rows_in_chunk >= batch_rows:
            batches.append(_columns(build_rows(chunk)))
            chunk, rows_in_chunk = [], 0
    if chunk:
        batches.append(_columns(build_rows(chunk)))
    return batches


def _columns(rows: Rows) -> Columns:
    decoded = [orjson.loads(line) for chunk in rows.chunks for _, line in chunk.keyed_lines()]
    columns: Columns = [[row.get(name) for row in decoded] for name in COLUMNS]
    for name in ("timestamp", "received_at"):
        index = COLUMNS.index(name)
        columns[index] = [datetime.fromisoformat(value) for value in columns[index]]
    return columns


def _raw_insert_rates(data_dir: Path, batches: list[Columns]) -> list[float]:
    """The rates of ``BASELINE_RUNS_EACH_SIDE`` runs, each into a new table of the events table's
    columns, all of them ordinary (so that prepared columns go in through the client's own
    insert, the engine's fastest path).

    A new table, as the benchmarked worker's is: an emptied one is not the same. Into a table
    emptied with TRUNCATE, the rates of runs in a row varied with a coefficient of variation of
    16-19% (three sets of ten or twelve runs), the first usually the fastest; into a new table
    each time, 5-8%.
    """
    rows = sum(len(batch[0]) for batch in batches)
    client = clickhouse_client(
        Settings(clickhouse_dsn=f"chdb://{(data_dir / 'raw-insert').resolve()}")
    )
    columns = ", ".join(f"`{name}` {COLUMN_TYPES[name]}" for name in COLUMNS)
    rates = []
    try:
        for _ in range(BASELINE_RUNS_EACH_SIDE):
            client.command(f"DROP TABLE IF EXISTS {RAW_INSERT_TABLE} SYNC")
            client.command(
                f"CREATE TABLE {RAW_INSERT_TABLE} ({columns}) ENGINE = MergeTree"
                " PARTITION BY toYYYYMM(timestamp) ORDER BY timestamp"
            )
            started = time.perf_counter()
            for batch in batches:
                client.insert(
                    RAW_INSERT_TABLE, batch, column_names=list(COLUMNS), column_oriented=True
                )
            rates.append(rows / (time.perf_counter() - started))
    finally:
        client.close()
    return rates


def _measure_baselines(
    settings: Settings,
    scratch: Path,
    messages: list[tuple[bytes, bytes]],
    batches: list[Columns],
    events: int,
) -> Baselines:
    progress("measuring raw baselines on the same data ...")
    return Baselines(
        produce=asyncio.run(raw_produce_rates(settings, messages, events)),
        insert=_raw_insert_rates(scratch, batches),
    )


def _stored_client_events(pipeline: LocalPipeline) -> int:
    with pipeline.stopped_worker_clickhouse() as client:
        count = client.query(
            f"SELECT count() FROM {TABLE} WHERE scope != {{scope:String}}",
            parameters={"scope": WORKING_TIME_SCOPE},
        ).result_rows[0][0]
    return int(count)


def broker_port(settings: Settings) -> int:
    return int(settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


def _posts(url: str, tokens: list[str], bodies: list[bytes]) -> list[bytes]:
    return [
        build_post(f"{url}/api/events", body, {"Authorization": f"Token {tokens[i % len(tokens)]}"})
        for i, body in enumerate(bodies)
    ]


def _warm_up(url: str, post: bytes) -> None:
    answer = asyncio.run(run_load(url, [post], 1))
    if answer.count(201) != 1:
        raise CommandError(f"the warm-up request was answered {answer.statuses}")


def _load(url: str, posts: list[bytes], concurrency: int) -> LoadResult:
    progress(f"posting {len(posts)} requests with {concurrency} connections ...")
    return asyncio.run(run_load(url, posts, concurrency))


def run_ingest_bench(base: Settings, options: IngestBenchOptions) -> dict[str, Any]:
    if options.url and not options.token:
        raise CommandError("--url needs --token: an API token of a user on that gateway")
    rng = random.Random(42)
    # One more request than asked for: the first warms the pipeline up and is not measured.
    requests_total = max(1, options.events // options.batch) + 1
    progress(f"building {requests_total} requests of {options.batch} events ...")
    bodies = [request_body(i, options.batch, rng) for i in range(requests_total)]
    messages = ingest_messages(bodies[1:])
    batches = _insert_batches(messages, base.batch_max_rows)
    events_total = len(messages) * options.batch
    end_to_end: float | None = None
    stored: int | None = None
    # Of the local pipeline's processes (not measured against a remote --url).
    cpu_per_event: dict[str, float] = {}

    # Our own broker serves the raw produce baseline, and the pipeline unless --url is given.
    with (
        tempfile.TemporaryDirectory(prefix="eventpipe-bench-") as scratch,
        scratch_settings(base, Path(scratch)) as settings,
    ):
        before = _measure_baselines(settings, Path(scratch), messages, batches, events_total)
        if options.url:
            assert options.token is not None
            url = options.url.rstrip("/")
            posts = _posts(url, [options.token], bodies)
            _warm_up(url, posts[0])
            ticks_before = CpuTicks.now()
            load = _load(url, posts[1:], options.concurrency)
            ticks_after = CpuTicks.now()
        else:
            # One user per tenant, so requests spread over partitions as real traffic does.
            tokens = list(user_tokens(settings, [f"bench{i}" for i in range(TENANTS)]).values())
            progress("starting a worker and a gateway ...")
            with LocalPipeline.run(
                settings,
                Path(scratch) / "pipeline.log",
                worker_role="processor",
                gateway_processes=options.gateway_processes,
            ) as pipeline:
                posts = _posts(pipeline.url, tokens, bodies)
                _warm_up(pipeline.url, posts[0])
                # The worker joins its group and stores the warm-up before the clock starts.
                pipeline.wait_until_stored(120, messages=1)
                roles = {
                    "gateway": pipeline.gateway.pid,
                    "worker": pipeline.worker.pid,
                    "broker": listening_process(broker_port(settings)),
                }
                cpu_before = cpu_seconds(roles)
                ticks_before = CpuTicks.now()
                load = _load(pipeline.url, posts[1:], options.concurrency)
                progress("waiting until every event is in ClickHouse ...")
                # From the start of the load; each acknowledged request is one message.
                committed_at = pipeline.wait_until_stored(600, messages=load.count(201) + 1)
                ticks_after = CpuTicks.now()
                cpu_per_event = micros_per_event(
                    cpu_before, cpu_seconds(roles), load.count(201) * options.batch
                )
                end_to_end = committed_at - load.started
                stored = _stored_client_events(pipeline) - options.batch
        after = _measure_baselines(settings, Path(scratch), messages, batches, events_total)
    raw_produce = statistics.median(before.produce + after.produce)
    raw_insert = statistics.median(before.insert + after.insert)

    acked = load.count(201) * options.batch
    acked_rate = acked / load.elapsed if load.elapsed else 0.0
    e2e_rate = acked / end_to_end if end_to_end else None
    return {
        "events_posted": events_total,
        "events_acknowledged": acked,
        "events_in_clickhouse": stored,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "concurrency": options.concurrency,
        "gateway_processes": options.gateway_processes,
        "events_per_request": options.batch,
        "acknowledged_events_per_s": round(acked_rate),
        "latency_p50_ms": round(load.percentile(0.50) * 1000, 2),
        "latency_p99_ms": round(load.percentile(0.99) * 1000, 2),
        "end_to_end_seconds": round(end_to_end, 3) if end_to_end else None,
        "end_to_end_events_per_s": round(e2e_rate) if e2e_rate else None,
        "raw_produce_events_per_s": round(raw_produce),
        "raw_insert_events_per_s": round(raw_insert),
        "ratio_acknowledged_to_raw_produce": round(acked_rate / raw_produce, 3),
        "ratio_end_to_end_to_raw_insert": round(e2e_rate / raw_insert, 3) if e2e_rate else None,
        # Of the machine's CPU time while the pipeline was measured: what its host took.
        "host_steal_percent": steal_percent(ticks_before, ticks_after),
        "cpu_us_per_event": cpu_per_event,
    }


def format_ingest_report(report: dict[str, Any]) -> str:
    lines = [
        "eventpipe ingest benchmark",
        f"  events posted / acknowledged / in ClickHouse: {report['events_posted']} / "
        f"{report['events_acknowledged']} / {report['events_in_clickhouse']}",
        f"  HTTP statuses: {report['statuses']}",
        f"  acknowledged: {report['acknowledged_events_per_s']:,} events/s "
        f"({report['concurrency']} connections, {report['events_per_request']} events/request, "
        f"{report['gateway_processes']} gateway processes)",
        f"  request latency: p50 {report['latency_p50_ms']} ms, p99 {report['latency_p99_ms']} ms",
    ]
    if report["end_to_end_events_per_s"]:
        lines.append(
            f"  end to end (until all in ClickHouse): "
            f"{report['end_to_end_events_per_s']:,} events/s ({report['end_to_end_seconds']} s)"
        )
    lines += [
        f"  raw aiokafka produce: {report['raw_produce_events_per_s']:,} events/s",
        f"  raw clickhouse-connect insert: {report['raw_insert_events_per_s']:,} events/s",
        f"  ratio acknowledged / raw produce: {report['ratio_acknowledged_to_raw_produce']}",
    ]
    if report["ratio_end_to_end_to_raw_insert"] is not None:
        lines.append(f"  ratio end-to-end / raw insert: {report['ratio_end_to_end_to_raw_insert']}")
    if report["host_steal_percent"] is not None:
        lines.append(f"  CPU time the host took (steal) meanwhile: {report['host_steal_percent']}%")
    if report.get("cpu_us_per_event"):
        lines.append("  CPU per acknowledged event (µs, from /proc, load until stored):")
        lines += [f"    {role:<15} {us:>7.2f}" for role, us in report["cpu_us_per_event"].items()]
    return "\n".join(lines)
