"""The pipeline a benchmark runs against: its own embedded stack or a running gateway (--url)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
from aiokafka import AIOKafkaConsumer, TopicPartition

from eventpipe.bench.load_generator import run_load
from eventpipe.contracts import WORKING_TIME_SCOPE
from eventpipe.embedded_broker import EmbeddedBroker, free_port, start_broker
from eventpipe.errors import CommandError
from eventpipe.events_table import TABLE
from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings


async def wait_until_committed(settings: Settings, timeout: float) -> float:
    """Wait until the processor's committed offsets reach the topic's end; return when."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.processor_group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(settings.events_topic, p)
            for p in sorted(consumer.partitions_for_topic(settings.events_topic) or set())
        ] or [TopicPartition(settings.events_topic, p) for p in range(settings.topic_partitions)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ends = await consumer.end_offsets(partitions)
            committed = {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
            if all(committed[tp] >= ends[tp] for tp in partitions):
                return time.perf_counter()
            await asyncio.sleep(0.05)
        raise TimeoutError(
            f"the processor did not commit every offset within {timeout:.0f}s; "
            "check the worker's log for insert errors"
        )
    finally:
        await consumer.stop()


def wait_ready(url: str, timeout: float, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise CommandError(f"{process.args!r} exited with {process.returncode}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/health/ready", timeout=1) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise CommandError(f"{url} was not ready within {timeout:.0f}s")


@dataclass
class BenchStack:
    url: str
    tokens: list[str]
    # None when benchmarking a gateway started elsewhere: its broker and ClickHouse are not ours.
    settings: Settings | None
    broker: EmbeddedBroker | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, base: Settings, scratch: Path, *, tenants: int, url: str | None, token: str | None
    ) -> Iterator[BenchStack]:
        if url:
            if not token:
                raise CommandError("--url needs --token: an API token of a user on that gateway")
            yield cls(url=url.rstrip("/"), tokens=[token], settings=None)
            return
        broker = start_broker()
        settings = base.with_overrides(
            data_dir=scratch / "data",
            kafka_bootstrap_servers=broker.bootstrap_servers,
            http_port=free_port(),
            clickhouse_dsn="",
        )
        store = IdentityStore(settings.data_dir)
        tokens = []
        for i in range(tenants):
            store.add_user(f"bench{i}", f"bench-password-{i}")
            tokens.append(store.create_token(f"bench{i}"))
        stack = cls(
            url=f"http://{settings.http_host}:{settings.http_port}",
            tokens=tokens,
            settings=settings,
            broker=broker,
        )
        env = settings.to_env()
        try:
            for role in (["worker", "--role", "processor"], ["gateway"]):
                stack.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "eventpipe.cli", *role],
                        env={**_inherited_env(), **env},
                        stdout=subprocess.DEVNULL,
                    )
                )
            print("starting broker, worker and gateway ...", flush=True)
            wait_ready(stack.url, 60, stack.processes)
            yield stack
        finally:
            stack.stop()

    def warm_up(self, request: bytes) -> None:
        """One request through the whole pipeline, so start-up is not part of the measurement."""
        result = asyncio.run(run_load(self.url, [request], 1))
        if result.count(201) != 1:
            raise CommandError(f"the warm-up request was answered {result.statuses}")
        if self.settings is not None:
            asyncio.run(wait_until_committed(self.settings, timeout=120))

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def stop_and_count_client_events(self) -> int | None:
        """Stop the worker (chDB allows one process per path) and count the stored client events."""
        if self.settings is None:
            return None
        for process in self.processes:
            process.terminate()
            process.wait(30)
        self.processes.clear()
        client = clickhouse_connect.get_client(dsn=self.settings.resolved_clickhouse_dsn)
        try:
            count = client.query(
                f"SELECT count() FROM {TABLE} FINAL WHERE scope != {{scope:String}}",
                parameters={"scope": WORKING_TIME_SCOPE},
            ).result_rows[0][0]
            return int(count)
        finally:
            client.close()


def _inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EVENTPIPE_")}
