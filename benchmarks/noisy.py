"""``eventpipe bench noisy``: a tenant at ten times its rate limit must not slow another down.

One gateway, one worker. A quiet tenant posts at half its limit, at a fixed pace, in three kinds
of phase: alone, beside a neighbour posting at exactly its limit, and beside a noisy neighbour
posting at ten times its limit. The kinds alternate for several rounds, so slow drifts of a
shared machine fall on all of them alike, and the spread of the quiet tenant's p99 over the
phases without a noisy neighbour is the noise its p99 beside one is judged against.

Five rounds by default. The verdict puts the noisy phases' median p99 against the range of the
other phases. The quiet tenant alone is faster than beside any neighbour, so the top of that range
is set by the phases beside a neighbour at its limit; were the noisy neighbour no different, three
rounds would still put the median above the range one time in five (whenever the two highest of
the six phases with a neighbour are noisy ones), five rounds one time in twelve.

The neighbour's load generator runs in a process of its own: in the quiet tenant's event loop,
its hundreds of requests a second would delay the quiet tenant's own sends and reads, and the
benchmark would measure itself. That process runs only on CPU time nothing else wants (Linux's
``SCHED_IDLE``): in production the noisy client's CPU is not the gateway's, while on one machine
it would take a share of the cores from the gateway and the quiet tenant's client. The report
says how many requests a second it really sent, which shows that it kept its pace.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Final

from benchmarks.host_cpu import CpuTicks, steal_percent
from benchmarks.load_generator import LoadResult, build_post, run_paced
from benchmarks.progress import progress
from eventpipe.errors import CommandError
from eventpipe.settings import Settings
from eventpipe_cli.testing.pipeline import LocalPipeline, scratch_settings, user_tokens
from eventpipe_cli.testing.traffic import request_body

EVENTS_PER_REQUEST: Final = 100
NEIGHBOUR_CONNECTIONS: Final = 8
NEIGHBOUR_NICENESS: Final = 19
DISTINCT_BODIES: Final = 64
# Time for the neighbour's process to build its requests before a phase starts.
PHASE_LEAD_SECONDS: Final = 2.0

ALONE: Final = "alone"
AT_LIMIT: Final = "neighbour_at_limit"
NOISY: Final = "neighbour_at_10x_limit"


def _posts(url: str, token: str, count: int) -> list[bytes]:
    """``count`` requests cycling through a few distinct ones, which are built once: the noisy
    neighbour sends 10,000 a phase, and copying each would allocate 280 MB in the load generator
    while it is meant to load only the gateway."""
    rng = random.Random(7)
    auth = {"Authorization": f"Token {token}"}
    distinct = [
        build_post(f"{url}/api/events", request_body(i, EVENTS_PER_REQUEST, rng), auth)
        for i in range(DISTINCT_BODIES)
    ]
    return [distinct[i % DISTINCT_BODIES] for i in range(count)]


async def _paced_from(
    start_at: float, url: str, posts: list[bytes], rate: float, conns: int
) -> LoadResult:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    return await run_paced(url, posts, rate, conns)


def _yield_cpu_to_everything_else() -> None:
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:  # not Linux: the lowest priority there is
        os.setpriority(os.PRIO_PROCESS, 0, NEIGHBOUR_NICENESS)


def _neighbour(
    url: str, token: str, per_second: float, seconds: float, start_at: float
) -> LoadResult:
    """The neighbour's load, in its own process: requests at ``per_second`` from ``start_at``."""
    _yield_cpu_to_everything_else()
    posts = _posts(url, token, int(per_second * seconds))
    return asyncio.run(_paced_from(start_at, url, posts, per_second, NEIGHBOUR_CONNECTIONS))


def _latency(result: LoadResult) -> dict[str, Any]:
    return {
        "requests": len(result.latencies),
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "p50_ms": round(result.percentile(0.50) * 1000, 2),
        "p99_ms": round(result.percentile(0.99) * 1000, 2),
    }


def run_noisy_bench(base: Settings, *, limit: float, seconds: float, rounds: int) -> dict[str, Any]:
    if rounds < 2:
        raise CommandError("--rounds must be at least 2: one round has no spread to judge by")
    quiet_rate = limit / 2 / EVENTS_PER_REQUEST  # requests/s
    neighbour_rates = {AT_LIMIT: limit / EVENTS_PER_REQUEST, NOISY: limit * 10 / EVENTS_PER_REQUEST}
    by_round: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="eventpipe-bench-") as scratch,
        scratch_settings(
            base, Path(scratch), tenant_events_per_second=limit, tenant_burst_events=int(limit)
        ) as settings,
        LocalPipeline.run(
            settings, Path(scratch) / "pipeline.log", worker_role="processor"
        ) as pipeline,
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as neighbours,
    ):
        tokens = user_tokens(settings, ["quiet", "neighbour"])
        quiet = _posts(pipeline.url, tokens["quiet"], int(quiet_rate * seconds))
        for number in range(1, rounds + 1):
            phases: dict[str, Any] = {}
            for kind in (ALONE, AT_LIMIT, NOISY):
                progress(f"round {number}/{rounds}: quiet tenant, {kind} ({seconds:g} s) ...")
                start_at = time.time() + PHASE_LEAD_SECONDS
                neighbour = None
                if kind != ALONE:
                    neighbour = neighbours.submit(
                        _neighbour,
                        pipeline.url,
                        tokens["neighbour"],
                        neighbour_rates[kind],
                        seconds,
                        start_at,
                    )
                ticks = CpuTicks.now()
                measured = asyncio.run(_paced_from(start_at, pipeline.url, quiet, quiet_rate, 1))
                phases[kind] = {
                    "quiet": _latency(measured),
                    "host_steal_percent": steal_percent(ticks, CpuTicks.now()),
                }
                if neighbour is not None:
                    other = neighbour.result()
                    phases[kind]["neighbour"] = _latency(other)
                    phases[kind]["neighbour_sent_events_per_s"] = round(
                        len(other.latencies) * EVENTS_PER_REQUEST / other.elapsed
                    )
                    phases[kind]["neighbour_accepted_events_per_s"] = round(
                        other.count(201) * EVENTS_PER_REQUEST / other.elapsed
                    )
            by_round.append(phases)
    return {
        "tenant_limit_events_per_s": limit,
        "quiet_events_per_s": quiet_rate * EVENTS_PER_REQUEST,
        "neighbour_events_per_s_offered": {
            kind: rate * EVENTS_PER_REQUEST for kind, rate in neighbour_rates.items()
        },
        "rounds": by_round,
        "summary": summarize(by_round),
    }


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The quiet tenant's p99 by kind of phase, and whether the noisy phases stay within noise.

    Noise is the range of p99s over every phase without a noisy neighbour (alone, and beside a
    neighbour at its limit); the noisy phases' median p99 is within noise when it is inside
    that range.
    """
    p50, p99 = (
        {
            kind: [phases[kind]["quiet"][percentile] for phases in rounds]
            for kind in (ALONE, AT_LIMIT, NOISY)
        }
        for percentile in ("p50_ms", "p99_ms")
    )
    calm = p99[ALONE] + p99[AT_LIMIT]
    median = {kind: statistics.median(values) for kind, values in p99.items()}
    return {
        "quiet_p50_median_ms": {kind: statistics.median(values) for kind, values in p50.items()},
        "quiet_p99_ms": p99,
        "quiet_p99_median_ms": median,
        "noise_range_ms": [min(calm), max(calm)],
        "noisy_vs_alone": round(median[NOISY] / median[ALONE], 2),
        "noisy_vs_at_limit": round(median[NOISY] / median[AT_LIMIT], 2),
        # Each round's two phases with a neighbour ran back to back: a round-by-round comparison
        # shows whether the noisy phase is slower in general or only in some rounds.
        "noisy_vs_at_limit_by_round": [
            round(noisy / at_limit, 2)
            for noisy, at_limit in zip(p99[NOISY], p99[AT_LIMIT], strict=True)
        ],
        "within_noise": min(calm) <= median[NOISY] <= max(calm),
        "host_steal_percent": {
            kind: [phases[kind]["host_steal_percent"] for phases in rounds]
            for kind in (ALONE, AT_LIMIT, NOISY)
        },
        **{
            f"neighbour_{what}_events_per_s": {
                kind: [phases[kind][f"neighbour_{what}_events_per_s"] for phases in rounds]
                for kind in (AT_LIMIT, NOISY)
            }
            for what in ("sent", "accepted")
        },
    }


def format_noisy_report(report: dict[str, Any]) -> str:
    summary = report["summary"]
    low, high = summary["noise_range_ms"]
    lines = [
        f"eventpipe noisy-tenant benchmark (limit {report['tenant_limit_events_per_s']:,.0f}"
        f" events/s per tenant; the quiet tenant posts {report['quiet_events_per_s']:,.0f})",
    ]
    for kind, values in summary["quiet_p99_ms"].items():
        lines.append(
            f"  quiet p99, {kind:<24} {', '.join(f'{v} ms' for v in values)}"
            f" (median {summary['quiet_p99_median_ms'][kind]} ms;"
            f" median p50 {summary['quiet_p50_median_ms'][kind]} ms)"
        )
    for kind, accepted in summary["neighbour_accepted_events_per_s"].items():
        offered = report["neighbour_events_per_s_offered"][kind]
        sent = summary["neighbour_sent_events_per_s"][kind]
        lines.append(
            f"  {kind}: offered {offered:,.0f} events/s, sent"
            f" {', '.join(f'{s:,}' for s in sent)}, accepted"
            f" {', '.join(f'{a:,}' for a in accepted)}"
        )
    lines += [
        f"  noise (p99 range without a noisy neighbour): {low}..{high} ms",
        f"  noisy median p99 / alone: {summary['noisy_vs_alone']},"
        f" / beside a neighbour at its limit: {summary['noisy_vs_at_limit']}"
        f" (by round: {', '.join(map(str, summary['noisy_vs_at_limit_by_round']))})",
        f"  within noise: {'yes' if summary['within_noise'] else 'no'}",
        *(
            f"  CPU time the host took (steal), {kind:<24}"
            f" {', '.join('?' if share is None else f'{share}%' for share in shares)}"
            for kind, shares in summary["host_steal_percent"].items()
        ),
    ]
    return "\n".join(lines)
