"""The host's steal over a measurement, from two readings of /proc/stat."""

from pathlib import Path

import pytest

from benchmarks import host_cpu
from benchmarks.host_cpu import CpuTicks, steal_percent


def test_a_cpu_line_gives_every_tick_but_guest_time_and_the_stolen_ones() -> None:
    ticks = CpuTicks.parse("cpu  2065960 6495 407175 4756665 17652 0 34168 191873 5000 0")
    assert ticks == CpuTicks(total=7_479_988, steal=191_873)


def test_steal_is_the_stolen_share_of_the_ticks_in_between() -> None:
    before = CpuTicks(total=1_000, steal=10)
    assert steal_percent(before, CpuTicks(total=1_400, steal=40)) == 7.5


def test_steal_is_unknown_without_readings_or_time_in_between() -> None:
    reading = CpuTicks(total=1_000, steal=10)
    assert steal_percent(None, reading) is None
    assert steal_percent(reading, None) is None
    assert steal_percent(reading, reading) is None


def test_this_machine_can_be_read_twice() -> None:
    before, after = CpuTicks.now(), CpuTicks.now()
    assert before is not None and after is not None
    assert after.total >= before.total and after.steal >= before.steal


def test_without_proc_stat_there_is_no_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_cpu, "PROC_STAT", tmp_path / "no-such-file")
    assert CpuTicks.now() is None
