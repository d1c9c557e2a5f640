"""Count what the pipeline acknowledged and what it stored, for the fault-injection tests.

Every posted event carries a unique marker in ``obj_name``; a test compares the markers of the
events answered 201 with the markers read back (ClickHouse with FINAL, or an export's CSV).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from eventpipe.clickhouse import clickhouse_client
from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings

PASSWORD = "poster-pw"
# Stored key of one event: its marker, and the table's identity of it (request_id, event_seq).
StoredEvent = tuple[str, str, int]


def add_posters(settings: Settings, count: int = 8) -> list[httpx.BasicAuth]:
    """``count`` sandbox users: each is its own tenant, so their requests spread over partitions."""
    identity = IdentityStore(settings.data_dir)
    names = [f"poster{n}" for n in range(count)]
    for name in names:
        identity.add_user(name, PASSWORD)
    return [httpx.BasicAuth(name, PASSWORD) for name in names]


def add_exporter_admin(settings: Settings) -> httpx.BasicAuth:
    """An admin, whose sandbox export holds every user's events."""
    IdentityStore(settings.data_dir).add_user("auditor", PASSWORD, admin=True)
    return httpx.BasicAuth("auditor", PASSWORD)


@dataclass
class Tally:
    """What the gateway answered, by event marker."""

    acknowledged: set[str] = field(default_factory=set)
    # Answered 503: the client may retry; the message may still have reached the broker.
    refused: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)
    # The answer to each request, by its number (in the order the requests were sent).
    by_request: dict[int, str] = field(default_factory=dict)
    slowest_refusal: float = 0.0

    def __str__(self) -> str:
        return f"{len(self.acknowledged)} events acknowledged, answers {dict(self.answers)}"


class Poster:
    """Posts requests of ``events_per_request`` marked events from several clients at once."""

    def __init__(
        self,
        url: str,
        users: list[httpx.BasicAuth],
        *,
        events_per_request: int = 10,
        concurrency: int = 8,
        pause: float = 0.0,
        timeout: float = 30.0,
    ) -> None:
        self.url = f"{url}/api/events"
        self.users = users
        self.events_per_request = events_per_request
        self.concurrency = concurrency
        # Between two requests of one client: a steady stream rather than a flood.
        self.pause = pause
        self.timeout = timeout
        self.tally = Tally()
        # The number of the next request, which also names its events' markers.
        self.sent = 0

    async def post(self, requests: int) -> Tally:
        """Post ``requests`` requests; return the tally of every answer so far."""
        return await self.post_until(lambda n: n >= requests)

    async def post_until(self, done: Callable[[int], bool]) -> Tally:
        """Post until ``done(number of the next request)`` holds."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:

            async def sender() -> None:
                while not done(self.sent):
                    self.sent += 1
                    await self._post_one(client, self.sent - 1)
                    await asyncio.sleep(self.pause)

            await asyncio.gather(*(sender() for _ in range(self.concurrency)))
        return self.tally

    async def _post_one(self, client: httpx.AsyncClient, number: int) -> None:
        now = datetime.now(UTC).isoformat()
        markers = [f"r{number}e{i}" for i in range(self.events_per_request)]
        body = {
            "events": [
                {"scope": "click:element", "timestamp": now, "obj_name": m} for m in markers
            ],
            "timestamp": now,
        }
        began = time.monotonic()
        try:
            answer = await client.post(
                self.url, json=body, auth=self.users[number % len(self.users)]
            )
        except httpx.TransportError as exc:
            self._answered(number, type(exc).__name__)
            return
        self._answered(number, str(answer.status_code))
        if answer.status_code == 201:
            self.tally.acknowledged.update(markers)
        elif answer.status_code == 503:
            assert answer.headers["retry-after"], answer.headers
            self.tally.refused.update(markers)
            self.tally.slowest_refusal = max(self.tally.slowest_refusal, time.monotonic() - began)

    def _answered(self, number: int, answer: str) -> None:
        self.tally.answers[answer] += 1
        self.tally.by_request[number] = answer


def stored_events(settings: Settings) -> list[StoredEvent]:
    """The posted events in ``settings``' ClickHouse, read without FINAL, as CVAT's readers read.

    Open only while no worker holds the embedded engine's path.
    """
    with clickhouse_client(settings) as client:
        rows = client.query(
            "SELECT obj_name, toString(request_id), event_seq FROM events"
            " WHERE obj_name IS NOT NULL"
        ).result_rows
    return [(str(marker), str(request_id), int(seq)) for marker, request_id, seq in rows]


def assert_exactly_once(
    markers: Iterable[str], acknowledged: set[str], may_also_hold: set[str] | None = None
) -> None:
    """Every acknowledged marker is there once; nothing else is, but ``may_also_hold``."""
    counts = Counter(markers)
    missing = acknowledged - counts.keys()
    repeated = sorted(marker for marker, count in counts.items() if count > 1)
    unknown = sorted(counts.keys() - acknowledged - (may_also_hold or set()))
    assert not (missing or repeated or unknown), (
        f"of {len(acknowledged)} acknowledged events {len(missing)} are missing"
        f" (e.g. {sorted(missing)[:3]}); {len(repeated)} stored more than once ({repeated[:3]});"
        f" {len(unknown)} never acknowledged ({unknown[:3]})"
    )


def events_table_dir(settings: Settings) -> Path:
    """Where the embedded engine keeps the ``events`` table's parts (read from its metadata)."""
    root = Path(settings.resolved_clickhouse_dsn.removeprefix("chdb://"))
    attach = (root / "metadata" / settings.clickhouse_database / "events.sql").read_text()
    match = re.search(r"UUID '([0-9a-f-]{36})'", attach)
    assert match, attach
    table_uuid = match.group(1)
    return root / "store" / table_uuid[:3] / table_uuid


@contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """``directory`` refuses new entries while inside, as a full or read-only disk would.

    The immutable flag binds root too (a mode change would not, and the tests may run as root).
    """
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


async def eventually(condition: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.1)


async def wait_for_log(
    log: Path, text: str, worker: subprocess.Popen[bytes], timeout: float
) -> None:
    """Wait until ``worker``'s log holds ``text``; fail if the worker exits first."""

    def logged() -> bool:
        assert worker.poll() is None, f"the worker exited with {worker.returncode}"
        return text in log.read_text(errors="replace")

    await eventually(logged, f"{text!r} in {log.name}", timeout)


def assigned_partitions(log: Path) -> set[int]:
    """The events partitions a worker was given last, as its Kafka consumer logged them."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if _ASSIGNED in line]
    return {int(p) for p in re.findall(r"partition=(\d+)", lines[-1])} if lines else set()


_ASSIGNED = "Setting newly assigned partitions"
