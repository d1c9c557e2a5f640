"""Run ``eventpipe dev`` as a user does, and find every process it started (for e2e tests)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pytest

from eventpipe.settings import inherited_environment

EVENTPIPE = Path(sys.executable).with_name("eventpipe")
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of a live process (None if gone), to tell it from a reused pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, start = fields[0], fields[19]
    return None if state == "Z" else int(start)


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root``, with its command line."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):
            continue
        pending.extend(children.get(pid, []))
    return found


def wait_for(what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def can_listen(port: int) -> bool:
    with socket.socket() as sock:
        # As servers do: connections this test closed may leave the port in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def ready_status(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/health/ready", timeout=2, trust_env=False).status_code
    except httpx.TransportError:
        return None


class DevStack:
    """One ``eventpipe dev`` process, its output collected in a file."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        *args: str,
        env: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
    ) -> None:
        workdir.mkdir(parents=True)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # Not created beforehand: the command must create it.
        self.data_dir = data_dir or workdir / "data" / "nested"
        self.output = workdir / "dev.log"
        self.seen: dict[int, int | None] = {}
        # Only the settings a test gives: none leaks in from the environment the tests run in.
        self.environment = inherited_environment() | (env or {})
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [EVENTPIPE, "dev", "--port", str(port), "--data-dir", str(self.data_dir), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.environment,
                cwd=workdir,
            )

    def cli(self, *args: str) -> str:
        """Run an ``eventpipe`` command on this stack's data directory and settings, as a user
        would next to ``eventpipe dev``; its output, stripped."""
        done = subprocess.run(
            [EVENTPIPE, *args, "--data-dir", str(self.data_dir)],
            env=self.environment,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"eventpipe {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout.strip()

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self) -> None:
        line = f"eventpipe is ready at {self.url}"
        deadline = time.monotonic() + READY_TIMEOUT
        while line not in self.log():
            assert self.process.poll() is None, f"eventpipe dev exited early:\n{self.log()}"
            assert time.monotonic() < deadline, f"not ready in {READY_TIMEOUT}s:\n{self.log()}"
            time.sleep(0.2)
        self.children()

    def children(self) -> dict[int, str]:
        """Every process below ``eventpipe dev`` now, remembered so orphans can be found later."""
        found = descendants(self.process.pid)
        self.seen.update({pid: process_start_time(pid) for pid in found})
        return found

    def leftovers(self) -> list[int]:
        """Processes once seen below ``eventpipe dev`` that still run."""
        return [p for p, t in self.seen.items() if t is not None and process_start_time(p) == t]

    def broker_port(self) -> int:
        match = re.search(r"broker listening on 127\.0\.0\.1:(\d+)", self.log())
        assert match, self.log()
        return int(match.group(1))

    def metrics_url(self, process: str) -> str:
        """Where ``eventpipe dev`` said the ``gateway``'s or the ``worker``'s metrics are."""
        match = re.search(rf"{process} metrics at (http://127\.0\.0\.1:\d+/metrics)", self.log())
        assert match, self.log()
        return match.group(1)

    def gateway_pid(self) -> int | None:
        pids = [p for p, cmd in self.children().items() if "cli gateway" in cmd]
        return pids[0] if len(pids) == 1 else None

    def interrupt(self) -> int:
        """Ctrl-C; return the exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"eventpipe dev did not stop within {STOP_TIMEOUT}s:\n{self.log()}")

    def kill_everything(self) -> None:
        if self.process.poll() is None:
            self.children()
            self.process.kill()
            self.process.wait()
        for pid in self.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
