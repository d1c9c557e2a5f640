"""``eventpipe dev`` as a user runs it: the real command, broker, worker and gateway processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.dev_stack_support import (
    READY_TIMEOUT,
    STOP_TIMEOUT,
    DevStack,
    can_listen,
    ready_status,
    wait_for,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc"),
]


def test_dev_starts_the_stack_and_ctrl_c_stops_every_process(
    start_stack: Callable[[], DevStack],
) -> None:
    stack = start_stack()
    stack.wait_ready()

    assert ready_status(stack.url) == 200
    assert stack.data_dir.is_dir()
    commands = " | ".join(stack.children().values())
    for expected in ("broker --listener-url", "cli worker --role all", "cli gateway"):
        assert expected in commands
    broker_port = stack.broker_port()
    gateway_metrics = httpx.get(stack.metrics_url("gateway"), trust_env=False).text
    assert "eventpipe_http_requests_total" in gateway_metrics
    assert httpx.get(f"{stack.url}/metrics", trust_env=False).status_code == 404
    # The worker serves its metrics once Faust is up, which can be after the gateway is ready.
    wait_for("the worker's metrics", lambda: serves_metrics(stack.metrics_url("worker")), 60)

    assert stack.interrupt() == 0

    assert stack.leftovers() == []
    assert can_listen(stack.port)
    assert can_listen(broker_port)
    order = [stack.log().index(line) for line in ("gateway stopped", "worker stopped", "| stopped")]
    assert order == sorted(order)


PROCESSES = ("gateway", "worker")


def test_two_stacks_run_side_by_side(start_stack: Callable[[], DevStack]) -> None:
    first, second = start_stack(), start_stack()
    first.wait_ready()
    second.wait_ready()

    assert ready_status(first.url) == 200
    assert ready_status(second.url) == 200
    assert first.broker_port() != second.broker_port()
    metrics = [stack.metrics_url(process) for stack in (first, second) for process in PROCESSES]
    assert len(set(metrics)) == 4

    assert first.interrupt() == 0
    assert ready_status(second.url) == 200
    assert second.interrupt() == 0


def test_a_killed_gateway_is_restarted(start_stack: Callable[[], DevStack]) -> None:
    stack = start_stack()
    stack.wait_ready()
    killed = stack.gateway_pid()
    assert killed is not None

    os.kill(killed, signal.SIGKILL)

    wait_for(
        "a new gateway to answer",
        lambda: stack.gateway_pid() not in (None, killed) and ready_status(stack.url) == 200,
        READY_TIMEOUT,
    )
    assert "gateway was killed by SIGKILL; restarting it" in stack.log()
    assert stack.interrupt() == 0


def test_no_process_outlives_a_killed_dev_command(start_stack: Callable[[], DevStack]) -> None:
    stack = start_stack()
    stack.wait_ready()
    assert len(stack.children()) >= 3

    stack.process.kill()
    stack.process.wait()

    wait_for("every child to exit", lambda: stack.leftovers() == [], STOP_TIMEOUT)
    wait_for("the gateway port to be free", lambda: can_listen(stack.port), STOP_TIMEOUT)


def serves_metrics(url: str) -> bool:
    try:
        return "eventpipe_consumer_lag" in httpx.get(url, trust_env=False).text
    except httpx.TransportError:
        return False
