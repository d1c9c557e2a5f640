"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eventpipe_cli.embedded_broker import free_port
from tests.e2e.dev_stack_support import DevStack

# A test property whose values are printed after the run: the fuzzer's seeds and figures.
FUZZ_LINE = "fuzz"
_fuzz_lines: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the lines in the process that reports to the terminal (with pytest-xdist, the
    controller: reports carry their properties there, a worker's output does not)."""
    if report.when == "call":
        _fuzz_lines.extend(
            str(value) for name, value in report.user_properties if name == FUZZ_LINE
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _fuzz_lines:
        terminalreporter.write_line(line)


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[..., DevStack]]:
    """Start ``eventpipe dev`` (with these extra arguments and ``EVENTPIPE_*`` variables); every
    stack is killed at the end."""
    started: list[DevStack] = []

    def start(*args: str, env: dict[str, str] | None = None) -> DevStack:
        stack = DevStack(tmp_path / f"stack{len(started)}", free_port(), *args, env=env)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.kill_everything()
