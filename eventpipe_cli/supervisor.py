"""Keep a few child processes running, the way a small process manager does.

The supervisor starts each child in its own process group, forwards its output line by line with
the child's name in front, reports children that exit, restarts them with exponential backoff when
asked to, and stops them in the reverse of their start order. It runs on the caller's thread: the
caller drives it by calling :meth:`Supervisor.pump` in a loop, so there are no threads to reason
about (``preexec_fn`` is only safe in a process without threads).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from eventpipe.backoff import Backoff

# Receives the supervisor's own messages.
Log = Callable[[str], None]
# Receives each line a child writes, with the child's name.
Output = Callable[[str, str], None]


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]


class OutputTail:
    """Splits a child's raw output into lines and keeps the last few for error reports."""

    def __init__(self, keep: int = 20) -> None:
        self.lines: deque[str] = deque(maxlen=keep)
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        """Add output; return the lines it completed."""
        *complete, self._partial = (self._partial + data).split(b"\n")
        return self._keep(complete)

    def flush(self) -> list[str]:
        """Return the unterminated last line, if any (the child exited without a newline)."""
        rest, self._partial = self._partial, b""
        return self._keep([rest] if rest else [])

    def _keep(self, raw: Iterable[bytes]) -> list[str]:
        lines = [line.decode(errors="replace").rstrip("\r") for line in raw]
        self.lines.extend(lines)
        return lines


@dataclass(frozen=True)
class ChildExit:
    name: str
    returncode: int
    uptime: float
    last_lines: list[str]

    def describe(self) -> str:
        if self.returncode < 0:
            return f"{self.name} was killed by {signal.Signals(-self.returncode).name}"
        return f"{self.name} exited with code {self.returncode}"


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    tail: OutputTail = field(default_factory=OutputTail)
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        log: Log,
        output: Output,
        backoff: Backoff | None = None,
        reset_after: float = 30.0,
    ) -> None:
        """``reset_after``: a child that ran at least this many seconds before it died was
        healthy, and its next restart waits only the backoff's first delay."""
        self._children = [_Child(spec) for spec in specs]
        self._log = log
        self._output = output
        self._backoff = backoff or Backoff()
        self._reset_after = reset_after
        self._selector = selectors.DefaultSelector()

    def start(self) -> None:
        """Start every child, in the order given."""
        for child in self._children:
            self._spawn(child)

    def pids(self) -> dict[str, int]:
        """The process id of every running child, by name."""
        return {c.spec.name: c.process.pid for c in self._children if c.process is not None}

    def pump(self, timeout: float) -> list[ChildExit]:
        """Forward output for up to ``timeout`` seconds, start due restarts, and report exits."""
        now = time.monotonic()
        for child in self._children:
            if child.restart_at is not None and child.restart_at <= now:
                self._spawn(child)
        self._forward_ready(timeout)
        return [self._reap(c) for c in self._children if c.process and c.process.poll() is not None]

    def restart_later(self, exited: ChildExit) -> float:
        """Schedule the restart of an exited child; return the delay chosen."""
        child = self._child(exited.name)
        child.failures = 1 if exited.uptime >= self._reset_after else child.failures + 1
        delay = self._backoff.wait(child.failures)
        child.restart_at = time.monotonic() + delay
        self._log(
            f"{exited.describe()}; restarting it in {delay:.2g}s"
            f" (failure {child.failures} in a row)"
        )
        return delay

    def stop(self, grace: float) -> None:
        """Stop every child, last started first: SIGTERM, then SIGKILL after ``grace`` seconds."""
        for child in reversed(self._children):
            child.restart_at = None
            if child.process is not None:
                self._stop(child, grace)
        self._selector.close()

    def _spawn(self, child: _Child) -> None:
        child.restart_at = None
        child.tail = OutputTail()
        child.process = subprocess.Popen(
            child.spec.argv,
            env=dict(child.spec.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own group: a terminal's Ctrl-C reaches only us, so we choose the stop order, and
            # one signal to the group also reaches anything the child started.
            process_group=0,
            preexec_fn=die_with_parent(os.getpid()),
        )
        child.started_at = time.monotonic()
        assert child.process.stdout is not None
        os.set_blocking(child.process.stdout.fileno(), False)
        self._selector.register(child.process.stdout, selectors.EVENT_READ, child)
        self._log(f"started {child.spec.name} (pid {child.process.pid})")

    def _forward_ready(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            self._forward(key.data)

    def _forward(self, child: _Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        # Non-blocking read: None when nothing is waiting, b"" at the end of the output.
        data = child.process.stdout.read()
        if data == b"":
            self._unregister(child.process.stdout)
        for line in child.tail.feed(data or b""):
            self._output(child.spec.name, line)

    def _unregister(self, pipe: IO[bytes]) -> None:
        with contextlib.suppress(KeyError):
            self._selector.unregister(pipe)

    def _reap(self, child: _Child) -> ChildExit:
        process = child.process
        assert process is not None and process.stdout is not None
        self._forward(child)  # what it wrote just before it exited
        self._unregister(process.stdout)
        for line in child.tail.flush():
            self._output(child.spec.name, line)
        process.stdout.close()
        child.process = None
        return ChildExit(
            child.spec.name,
            process.returncode,
            time.monotonic() - child.started_at,
            list(child.tail.lines),
        )

    def _stop(self, child: _Child, grace: float) -> None:
        assert child.process is not None
        name, pid = child.spec.name, child.process.pid
        self._log(f"stopping {name} (pid {pid})")
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        # Keep forwarding output while waiting, so a child that logs on its way out never blocks
        # on a full pipe.
        while child.process.poll() is None and time.monotonic() < deadline:
            self._forward_ready(0.1)
        stopped = child.process.poll() is not None
        if not stopped:
            self._log(f"{name} did not stop within {grace:g}s; killing it")
        # Also reaches anything the child started that outlived it, so no orphan is left behind.
        _signal_group(pid, signal.SIGKILL)
        child.process.wait()
        self._reap(child)
        self._log(f"{name} stopped" if stopped else f"{name} killed")

    def _child(self, name: str) -> _Child:
        return next(c for c in self._children if c.spec.name == name)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


_PR_SET_PDEATHSIG = 1
# Loaded before any fork: the child between fork and exec must not load libraries.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A ``preexec_fn``: on Linux the child gets SIGTERM when its parent dies, even by SIGKILL.

    The kernel sends it when the *thread* that forked the child exits, which is why the supervisor
    spawns from the caller's thread only. Elsewhere (None) the process group still lets
    :meth:`Supervisor.stop` reach every process a child started.
    """
    libc = _LIBC
    if libc is None:
        return None

    def set_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent may have died before prctl ran: then no signal will ever come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return set_death_signal
