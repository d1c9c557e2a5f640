"""``eventpipe dev``: the whole pipeline on this machine, in the foreground.

Startup order: the embedded broker (on a port the OS picks, so several stacks can run side by
side), then one worker with every role (embedded ClickHouse allows one process per data path),
then the gateway. The stack is ready when the gateway's ``/health/ready`` answers 200. Ctrl-C or
SIGTERM stops everything in the reverse order. A worker or gateway that dies while running is
restarted with backoff; the broker keeps topics only in memory, so its death ends the stack.
The worker and the gateway serve their metrics on ports the OS picks, for the same reason as the
broker.
"""

from __future__ import annotations

import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from eventpipe.errors import CommandError
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import EmbeddedBroker, free_port, start_broker
from eventpipe_cli.supervisor import ChildSpec, Supervisor
from ingest_gateway.intake.app import check_intake_settings

READY_TIMEOUT_SECONDS = 120.0
STOP_GRACE_SECONDS = 10.0
# How often the user hears that we are still waiting for the gateway.
PROGRESS_EVERY_SECONDS = 5.0
# Seconds one supervision step waits for child output; bounds how late a Ctrl-C is noticed.
TICK_SECONDS = 0.2


def say(message: str) -> None:
    _show("dev", message)


def _show(source: str, line: str) -> None:
    # One column for the source, as process managers print it, so interleaved output stays legible.
    print(f"{source:<7} | {line}", flush=True)


def run_dev_stack(settings: Settings) -> int:
    settings = settings.with_overrides(data_dir=settings.data_dir.resolve())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _check_port_free(settings.http_host, settings.http_port, "--port")
    if settings.intake_port:
        # What the gateway would refuse, refused before the broker and the worker start.
        check_intake_settings(settings)
        _check_port_free(settings.intake_host, settings.intake_port, "--intake-port")
    _describe(settings)
    with _stop_on_signals() as stop_requested:
        say("starting the Kafka broker ...")
        broker = start_broker(die_with_parent=True)
        try:
            say(f"broker listening on {broker.bootstrap_servers}")
            settings = settings.with_overrides(kafka_bootstrap_servers=broker.bootstrap_servers)
            # Each process serves its metrics on a port of its own.
            worker = settings.with_overrides(metrics_port=settings.metrics_port and free_port())
            gateway = settings.with_overrides(metrics_port=settings.metrics_port and free_port())
            supervisor = Supervisor(_children(worker, gateway), say, _show)
            try:
                supervisor.start()
                url = _local_url(settings.http_host, settings.http_port)
                if _wait_until_ready(supervisor, broker, url, stop_requested):
                    say(f"eventpipe is ready at {url}")
                    _describe_metrics(worker, gateway)
                    if settings.intake_port:
                        intake = _local_url(settings.intake_host, settings.intake_port)
                        say(f"intake for CVAT's server at {intake}/")
                    say("press Ctrl-C to stop")
                    _supervise(supervisor, broker, stop_requested)
                say(f"{stop_requested.signal_name} received")
            finally:
                say("stopping ...")
                supervisor.stop(STOP_GRACE_SECONDS)
        finally:
            broker.stop(STOP_GRACE_SECONDS)
    say("stopped")
    return 0


def _children(worker: Settings, gateway: Settings) -> list[ChildSpec]:
    """Worker before gateway: events the gateway accepts then find a consumer already running."""
    command = [sys.executable, "-m", "eventpipe_cli.cli"]
    return [
        ChildSpec("worker", [*command, "worker", "--role", "all"], _child_env(worker)),
        ChildSpec("gateway", [*command, "gateway"], _child_env(gateway)),
    ]


def _child_env(settings: Settings) -> dict[str, str]:
    env = settings.child_environment()
    # Child output goes through a pipe; unbuffered, each line shows up as it is written.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_until_ready(
    supervisor: Supervisor, broker: EmbeddedBroker, url: str, stop_requested: _Flag
) -> bool:
    """True once the gateway is ready; False if the user stopped first. Raises if startup fails."""
    started = time.monotonic()
    next_progress = started + PROGRESS_EVERY_SECONDS
    while not stop_requested():
        for exited in supervisor.pump(TICK_SECONDS):
            say(f"{exited.describe()} while starting; its last output:")
            for line in exited.last_lines:
                say(f"  {line}")
            raise CommandError(
                f"the {exited.name} could not start (see its output above); "
                "fix the cause and run `eventpipe dev` again"
            )
        _check_broker(broker)
        if _is_ready(url):
            return True
        now = time.monotonic()
        if now - started > READY_TIMEOUT_SECONDS:
            raise CommandError(
                f"{url}/health/ready did not answer 200 within {READY_TIMEOUT_SECONDS:g}s; "
                "the output above says what the gateway and worker were doing"
            )
        if now >= next_progress:
            say(f"waiting for the gateway at {url}/health/ready ({now - started:.0f}s)")
            next_progress = now + PROGRESS_EVERY_SECONDS
    return False


def _supervise(supervisor: Supervisor, broker: EmbeddedBroker, stop_requested: _Flag) -> None:
    while not stop_requested():
        for exited in supervisor.pump(TICK_SECONDS):
            supervisor.restart_later(exited)
        _check_broker(broker)


def _check_broker(broker: EmbeddedBroker) -> None:
    code = broker.process.poll()
    if code is not None:
        raise CommandError(
            f"the Kafka broker exited with code {code}; it keeps events only in memory, so "
            "restarting it alone would lose them: run `eventpipe dev` again"
        )


def _is_ready(url: str) -> bool:
    try:
        with _LOCAL.open(f"{url}/health/ready", timeout=2) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


# The gateway is local: never send the probe through an HTTP proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _local_url(listen_host: str, port: int) -> str:
    # A wildcard listen address is not somewhere to connect to; its loopback is.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listen_host, listen_host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _describe_metrics(worker: Settings, gateway: Settings) -> None:
    for name, settings in (("gateway", gateway), ("worker", worker)):
        if settings.metrics_port:
            url = _local_url(settings.http_host, settings.metrics_port)
            say(f"{name} metrics at {url}/metrics")


def _check_port_free(host: str, port: int, flag: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the gateway's server does, so a port in TIME_WAIT after the last run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        # OverflowError: a port outside 0-65535 (from the environment, or --intake-port).
        except (OSError, OverflowError) as exc:
            raise CommandError(
                f"cannot listen on {host}:{port} ({getattr(exc, 'strerror', None) or exc}); "
                f"stop whatever uses it or pick another port with {flag}"
            ) from None


def _describe(settings: Settings) -> None:
    shown = settings.redacted()
    clickhouse = (
        f"EVENTPIPE_CLICKHOUSE_DSN={shown['EVENTPIPE_CLICKHOUSE_DSN']}"
        if settings.clickhouse_dsn
        else f"embedded in {settings.data_dir / 'clickhouse'}"
    )
    exports = (
        f"S3 at {shown['EVENTPIPE_S3_ENDPOINT']}, bucket {shown['EVENTPIPE_S3_BUCKET']}"
        if settings.s3_endpoint
        else "stored in the data directory"
    )
    say(f"data directory: {settings.data_dir}")
    say(f"clickhouse: {clickhouse}")
    say(f"exports: {exports}")


class _Flag:
    """Set by a signal handler; true once a stop signal arrived."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __call__(self) -> bool:
        return self.signal_name is not None


@contextmanager
def _stop_on_signals() -> Iterator[_Flag]:
    """Turn SIGINT and SIGTERM into a flag the loops check, so shutdown runs in order."""
    flag = _Flag()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # Only record it: printing here could re-enter a print the main loop is in the middle of.
        flag.signal_name = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
