"""A worker and a gateway started as real processes against a given broker, for benchmarks and
end-to-end tests: start them, wait until every posted event is in ClickHouse, read the table."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from clickhouse_connect.driver.client import Client

from eventpipe.clickhouse import clickhouse_client
from eventpipe.errors import CommandError
from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port, start_broker


@contextlib.asynccontextmanager
async def group_observer(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of the processor group that subscribes to nothing: it reads the group's
    committed offsets without joining the group, so it never takes partitions from a worker."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.processor_group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def offsets_by_partition(
    observer: AIOKafkaConsumer, settings: Settings
) -> tuple[dict[int, int], dict[int, int]]:
    """The processor group's committed offset and the end offset of each events partition."""
    partitions = [
        TopicPartition(settings.events_topic, p) for p in range(settings.topic_partitions)
    ]
    committed = [(await observer.committed(tp)) or 0 for tp in partitions]
    ends = await observer.end_offsets(partitions)
    return (
        {tp.partition: offset for tp, offset in zip(partitions, committed, strict=True)},
        {tp.partition: offset for tp, offset in ends.items()},
    )


async def wait_until_committed(
    settings: Settings, timeout: float = 60.0, messages: int | None = None
) -> float:
    """Wait until the processor committed ``messages`` messages of the events topic (by default,
    up to the topic's end); return when.

    The processor commits an offset only after its rows are inserted, so this is the moment those
    events are in ClickHouse. Give ``messages`` when it is known: the embedded broker reports the
    end of a partition short after a batch of several records, which concurrent posting makes.
    """
    async with group_observer(settings) as observer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed, ends = await offsets_by_partition(observer, settings)
            target = messages if messages is not None else sum(ends.values())
            if sum(committed.values()) >= target:
                return time.perf_counter()
            await asyncio.sleep(0.05)
    raise TimeoutError(
        f"the processor did not commit every offset within {timeout:.0f}s; "
        "check the worker's log for insert errors"
    )


@contextlib.contextmanager
def scratch_settings(base: Settings, scratch: Path, **overrides: Any) -> Iterator[Settings]:
    """Settings for a pipeline kept under ``scratch``, with a broker of its own and the embedded
    ClickHouse engine; the broker stops on exit."""
    broker = start_broker()
    try:
        defaults: dict[str, Any] = {
            "data_dir": scratch / "data",
            "kafka_bootstrap_servers": broker.bootstrap_servers,
            "http_port": free_port(),
            "clickhouse_dsn": "",
            # Several scratch workers may run at once; none needs a metrics port.
            "metrics_port": 0,
        }
        yield base.with_overrides(**(defaults | overrides))
    finally:
        broker.stop()


def user_tokens(settings: Settings, names: list[str]) -> dict[str, str]:
    """Create these users in the pipeline's identity store; an API token for each."""
    store = IdentityStore(settings.data_dir)
    tokens = {}
    for name in names:
        store.add_user(name, f"{name}-password")
        tokens[name] = store.create_token(name)
    return tokens


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


def start_eventpipe(
    command: list[str], settings: Settings, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """``eventpipe <command>`` as a child process with exactly ``settings``, output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "eventpipe_cli.cli", *command],
        env=settings.child_environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class LocalPipeline:
    settings: Settings
    worker: subprocess.Popen[bytes]
    gateway: subprocess.Popen[bytes]
    # Where the gateway's metrics are served (on a port of their own, never the API's).
    metrics_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    @classmethod
    @contextlib.contextmanager
    def run(
        cls,
        settings: Settings,
        log_path: Path,
        worker_role: str = "all",
        gateway_processes: int = 1,
    ) -> Iterator[LocalPipeline]:
        """Start a worker and a gateway on ``settings`` (whose broker must be running)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # The children's logs would drown a report; they are kept for when something fails.
        with log_path.open("wb") as log:
            worker = start_eventpipe(["worker", "--role", worker_role], settings, log)
            gateway_settings = settings.with_overrides(metrics_port=free_port())
            gateway = start_eventpipe(
                ["gateway", "--workers", str(gateway_processes)], gateway_settings, log
            )
            metrics_url = f"http://{settings.http_host}:{gateway_settings.metrics_port}/metrics"
            pipeline = cls(settings, worker, gateway, metrics_url, [worker, gateway])
            try:
                wait_ready(pipeline.url, 60, pipeline.processes)
                yield pipeline
            except BaseException:
                # On standard error: a benchmark's standard output carries only its report.
                lines = log_path.read_text(errors="replace").splitlines()[-30:]
                print("the pipeline's last log lines:", *lines, sep="\n  ", file=sys.stderr)
                raise
            finally:
                pipeline.stop()

    def wait_until_stored(self, timeout: float = 120, messages: int | None = None) -> float:
        return asyncio.run(wait_until_committed(self.settings, timeout, messages))

    def stop(self) -> None:
        stop_processes(self.processes)

    @contextlib.contextmanager
    def stopped_worker_clickhouse(self) -> Iterator[Client]:
        """The worker's ClickHouse, opened here after stopping the worker: an embedded engine
        admits one process per data path."""
        self.worker.terminate()
        self.worker.wait(30)
        client = clickhouse_client(self.settings)
        try:
            yield client
        finally:
            client.close()
