"""A lean HTTP/1.1 load generator: pre-built requests over keep-alive connections.

A general-purpose client spends more CPU per request than the gateway does, and on a 2-core
machine that would make the benchmark measure the client. This one writes pre-encoded request
bytes and parses only the status line and Content-Length of each answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from benchmarks.progress import progress


@dataclass
class LoadResult:
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0  # time.perf_counter() when the first request went out
    elapsed: float = 0.0

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def build_post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


async def run_load(
    url: str, requests: Sequence[bytes], concurrency: int, progress_every: float = 2.0
) -> LoadResult:
    """Send every pre-built request once, ``concurrency`` connections at a time."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = LoadResult()
    next_index = 0
    done = 0

    async def connection() -> None:
        nonlocal next_index, done
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next_index < len(requests):
                request = requests[next_index]
                next_index += 1
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                done += 1
        finally:
            writer.close()

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(progress_every)
            progress(f"  ... {done}/{len(requests)} requests answered")

    result.started = time.perf_counter()
    reporter = asyncio.create_task(report_progress())
    try:
        await asyncio.gather(*(connection() for _ in range(concurrency)))
    finally:
        reporter.cancel()
    result.elapsed = time.perf_counter() - result.started
    return result


async def run_paced(
    url: str, requests: Sequence[bytes], per_second: float, connections: int
) -> LoadResult:
    """Send the requests at a fixed rate (open loop), spread over ``connections``.

    Unlike :func:`run_load`, a slow answer does not slow the sender down, so latency is measured
    as a client with its own pace sees it, and a noisy client keeps pushing while refused.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = LoadResult()
    interval = connections / per_second

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            await asyncio.sleep(offset * interval / connections)
            next_send = time.perf_counter()
            for request in requests[offset::connections]:
                next_send += interval
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
        finally:
            writer.close()

    result.started = time.perf_counter()
    await asyncio.gather(*(connection(i) for i in range(connections)))
    result.elapsed = time.perf_counter() - result.started
    return result
