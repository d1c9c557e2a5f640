"""Where an ingest run's CPU time goes: per role, from /proc, a process tree at a time."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from benchmarks.process_cpu import cpu_seconds, listening_process, micros_per_event

# A parent that starts a child; both spin for a while, then wait to be killed.
SPINNING_TREE = """
import subprocess, sys, time
def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
child = subprocess.Popen([sys.executable, "-c", "import time\\nend = time.process_time() + 0.3\\n"
                          "while time.process_time() < end: pass\\nprint('done', flush=True)\\n"
                          "time.sleep(60)"], stdout=sys.stdout)
spin(0.3)
print("done", flush=True)
time.sleep(60)
"""


def test_a_role_counts_its_process_and_those_below_it() -> None:
    tree = subprocess.Popen(
        [sys.executable, "-c", SPINNING_TREE, "--port=:65001"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert tree.stdout is not None
        assert [tree.stdout.readline(), tree.stdout.readline()] == ["done\n", "done\n"]
        spent = cpu_seconds({"tree": tree.pid})
        assert spent["tree"] >= 0.55  # both processes' 0.3 s
        # The load generator counts its own process only, not the tree it started.
        own = resource.getrusage(resource.RUSAGE_SELF)
        assert spent["load generator"] == pytest.approx(own.ru_utime + own.ru_stime, abs=0.1)
        assert listening_process(65001) == tree.pid
    finally:
        tree.kill()
        tree.wait()


def test_micros_per_event_per_role_and_in_total() -> None:
    before = {"gateway": 1.0, "worker": 2.0}
    after = {"gateway": 1.5, "worker": 2.25}
    assert micros_per_event(before, after, 100_000) == {
        "gateway": 5.0,
        "worker": 2.5,
        "total": 7.5,
    }
    assert micros_per_event(before, after, 0) == {}
