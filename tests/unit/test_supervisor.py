"""The process supervisor behind ``eventpipe dev``, driven with small Python child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from eventpipe.backoff import Backoff
from eventpipe_cli.supervisor import ChildExit, ChildSpec, OutputTail, Supervisor

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def python_child(name: str, code: str) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-c", textwrap.dedent(code)], dict(os.environ))


CRASHER = python_child("crasher", "raise SystemExit(1)")


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting for its (new) parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Recorder:
    """Collects the supervisor's messages and its children's output as one transcript."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def output(self, name: str, line: str) -> None:
        self.lines.append(f"{name} | {line}")


@pytest.fixture
def log() -> Recorder:
    return Recorder()


class Start(Protocol):
    def __call__(
        self, child: ChildSpec, backoff: Backoff | None = None, reset_after: float = 30.0
    ) -> Supervisor: ...


@pytest.fixture
def start(log: Recorder) -> Iterator[Start]:
    """Starts a supervisor of one child that reports to ``log``; stops it after the test."""
    started: list[Supervisor] = []

    def start(
        child: ChildSpec, backoff: Backoff | None = None, reset_after: float = 30.0
    ) -> Supervisor:
        supervisor = Supervisor([child], log.message, log.output, backoff, reset_after)
        started.append(supervisor)
        supervisor.start()
        return supervisor

    yield start
    for supervisor in started:
        supervisor.stop(grace=1)


def pump_until_exit(supervisor: Supervisor, timeout: float = 10.0) -> ChildExit:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exits = supervisor.pump(0.05)
        if exits:
            return exits[0]
    raise AssertionError("no child exited")


def test_output_tail_splits_lines_across_reads_and_keeps_the_last_ones() -> None:
    tail = OutputTail(keep=2)
    assert tail.feed(b"one\ntw") == ["one"]
    assert tail.feed(b"o\nthree\r\nfour") == ["two", "three"]
    assert tail.flush() == ["four"]
    assert tail.flush() == []
    assert list(tail.lines) == ["three", "four"]


def test_output_is_forwarded_by_name_and_an_exit_reports_the_last_lines(
    log: Recorder, start: Start
) -> None:
    supervisor = start(python_child("crasher", "print('hello'); raise SystemExit(3)"))

    exited = pump_until_exit(supervisor)

    assert (exited.name, exited.returncode, exited.last_lines) == ("crasher", 3, ["hello"])
    assert exited.describe() == "crasher exited with code 3"
    assert "crasher | hello" in log.lines
    assert supervisor.pids() == {}


def test_a_child_that_keeps_crashing_is_restarted_with_growing_delays(
    log: Recorder, start: Start
) -> None:
    supervisor = start(CRASHER, Backoff(initial=0.05, factor=2, jitter=0), reset_after=60)
    first_pid = supervisor.pids()["crasher"]

    assert supervisor.restart_later(pump_until_exit(supervisor)) == 0.05
    wait_for(lambda: supervisor.pump(0.01) == [] and "crasher" in supervisor.pids())
    assert supervisor.pids()["crasher"] != first_pid
    assert supervisor.restart_later(pump_until_exit(supervisor)) == 0.1
    assert any("restarting it in 0.1s" in line for line in log.lines)


def test_a_child_that_ran_long_enough_restarts_after_the_initial_delay(start: Start) -> None:
    supervisor = start(CRASHER, Backoff(initial=0.05, jitter=0), reset_after=0)

    for _ in range(3):
        assert supervisor.restart_later(pump_until_exit(supervisor)) == 0.05


def test_stop_goes_in_reverse_start_order(log: Recorder) -> None:
    sleeper = "import time; time.sleep(60)"
    supervisor = Supervisor(
        [python_child("first", sleeper), python_child("second", sleeper)], log.message, log.output
    )
    supervisor.start()
    pids = supervisor.pids()

    supervisor.stop(grace=5)

    stops = [line for line in log.lines if line.startswith("stopping")]
    assert stops == [
        f"stopping second (pid {pids['second']})",
        f"stopping first (pid {pids['first']})",
    ]
    assert log.lines[-1] == "first stopped"
    assert not any("did not stop" in line for line in log.lines)


@linux_only
def test_stop_kills_a_child_that_ignores_sigterm_and_what_it_started(log: Recorder) -> None:
    stubborn = """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("grandchild", grandchild.pid, flush=True)
        time.sleep(60)
    """
    supervisor = Supervisor([python_child("stubborn", stubborn)], log.message, log.output)
    supervisor.start()
    child_pid = supervisor.pids()["stubborn"]
    wait_for(lambda: supervisor.pump(0.05) == [] and any("grandchild" in x for x in log.lines))
    grandchild_pid = int(next(x for x in log.lines if "grandchild" in x).split()[-1])

    supervisor.stop(grace=0.5)

    assert log.lines[-2:] == ["stubborn did not stop within 0.5s; killing it", "stubborn killed"]
    assert not alive(child_pid)
    wait_for(lambda: not alive(grandchild_pid))


@linux_only
def test_children_die_with_a_supervisor_that_is_killed() -> None:
    script = """
        import os, sys, time
        from eventpipe_cli.supervisor import ChildSpec, Supervisor
        sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
        child = ChildSpec("sleeper", sleeper, os.environ)
        supervisor = Supervisor([child], print, print)
        supervisor.start()
        print("pid", supervisor.pids()["sleeper"], flush=True)
        time.sleep(60)
    """
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    line = next(x for x in parent.stdout if x.startswith("pid "))
    child_pid = int(line.split()[1])
    assert alive(child_pid)

    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()

    wait_for(lambda: not alive(child_pid), timeout=5)
