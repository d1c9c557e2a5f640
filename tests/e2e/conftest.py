"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from eventpipe_cli.embedded_broker import free_port
from tests.e2e.dev_stack_support import DevStack


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
