"""``eventpipe bench noisy``: a tenant at ten times its rate limit must not slow another down.

One gateway, one worker. The quiet tenant posts at half its limit, at a fixed pace; first alone,
then while the noisy tenant posts at ten times its limit. The report compares the quiet tenant's
latency in both phases and shows what the noisy tenant got through.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path
from typing import Any, Final

from eventpipe.bench.load_generator import LoadResult, build_post, run_paced
from eventpipe.bench.stack import LocalPipeline, scratch_settings, user_tokens
from eventpipe.bench.workload import request_body
from eventpipe.settings import Settings

EVENTS_PER_REQUEST: Final = 100


def _latency(result: LoadResult) -> dict[str, Any]:
    return {
        "requests": len(result.latencies),
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "p50_ms": round(result.percentile(0.50) * 1000, 2),
        "p99_ms": round(result.percentile(0.99) * 1000, 2),
    }


def run_noisy_bench(base: Settings, *, limit: float, seconds: float) -> dict[str, Any]:
    quiet_rate = limit / 2 / EVENTS_PER_REQUEST  # requests/s
    noisy_rate = limit * 10 / EVENTS_PER_REQUEST
    rng = random.Random(7)
    bodies = [request_body(i, EVENTS_PER_REQUEST, rng) for i in range(64)]
    with (
        tempfile.TemporaryDirectory(prefix="eventpipe-bench-") as scratch,
        scratch_settings(
            base, Path(scratch), tenant_events_per_second=limit, tenant_burst_events=int(limit)
        ) as settings,
        LocalPipeline.run(
            settings, Path(scratch) / "pipeline.log", worker_role="processor"
        ) as pipeline,
    ):
        tokens = user_tokens(settings, ["quiet", "noisy"])

        def posts(name: str, count: int) -> list[bytes]:
            auth = {"Authorization": f"Token {tokens[name]}"}
            url = f"{pipeline.url}/api/events"
            return [build_post(url, bodies[i % len(bodies)], auth) for i in range(count)]

        quiet = posts("quiet", int(quiet_rate * seconds))
        noisy = posts("noisy", int(noisy_rate * seconds))

        async def both() -> tuple[LoadResult, LoadResult]:
            return await asyncio.gather(
                run_paced(pipeline.url, quiet, quiet_rate, 1),
                run_paced(pipeline.url, noisy, noisy_rate, 8),
            )

        print(f"quiet tenant alone for {seconds:.0f} s ...", flush=True)
        alone = asyncio.run(run_paced(pipeline.url, quiet, quiet_rate, 1))
        print(f"quiet and noisy tenants together for {seconds:.0f} s ...", flush=True)
        together, noise = asyncio.run(both())
    return {
        "tenant_limit_events_per_s": limit,
        "quiet_events_per_s": quiet_rate * EVENTS_PER_REQUEST,
        "noisy_events_per_s_offered": noisy_rate * EVENTS_PER_REQUEST,
        "noisy_events_per_s_accepted": round(noise.count(201) * EVENTS_PER_REQUEST / noise.elapsed),
        "quiet_alone": _latency(alone),
        "quiet_with_noisy": _latency(together),
        "noisy": _latency(noise),
        "quiet_p99_ratio": round(together.percentile(0.99) / max(alone.percentile(0.99), 1e-9), 2),
    }


def format_noisy_report(report: dict[str, Any]) -> str:
    alone, together, noisy = report["quiet_alone"], report["quiet_with_noisy"], report["noisy"]
    return "\n".join(
        [
            f"eventpipe noisy-tenant benchmark (limit {report['tenant_limit_events_per_s']:,.0f}"
            " events/s per tenant)",
            f"  quiet tenant alone:      p50 {alone['p50_ms']} ms, p99 {alone['p99_ms']} ms, "
            f"{alone['statuses']}",
            f"  quiet tenant with noise: p50 {together['p50_ms']} ms, p99 {together['p99_ms']} ms, "
            f"{together['statuses']}",
            f"  noisy tenant offered {report['noisy_events_per_s_offered']:,.0f} events/s, "
            f"accepted {report['noisy_events_per_s_accepted']:,} events/s, {noisy['statuses']}",
            f"  quiet p99 with noise / alone: {report['quiet_p99_ratio']}",
        ]
    )
