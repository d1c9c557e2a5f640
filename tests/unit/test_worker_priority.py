"""A worker lowers its own CPU priority by ``EVENTPIPE_WORKER_NICE``, and only lowers it."""

from __future__ import annotations

import os

import pytest

from eventpipe.errors import CommandError
from eventpipe_cli.worker import lower_cpu_priority


@pytest.mark.parametrize("increment", [-1, 20])
def test_an_increment_outside_0_to_19_is_refused_naming_the_variable(increment: int) -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    refused = rf"EVENTPIPE_WORKER_NICE={increment} is outside 0\.\.19"
    with pytest.raises(CommandError, match=refused):
        lower_cpu_priority(increment)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before


def test_zero_keeps_the_priority_and_reports_it() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    assert lower_cpu_priority(0) == before
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
