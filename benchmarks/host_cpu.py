"""CPU time the host of a virtual machine took from it ("steal"), read from ``/proc/stat``.

Steal is time a virtual CPU was ready to run but the hypervisor ran something else. A benchmark
on a shared machine reports it per measurement, so a slow phase can be told apart from a slow
program.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class CpuTicks:
    total: int
    steal: int

    @classmethod
    def parse(cls, cpu_line: str) -> CpuTicks:
        """From the first line of ``/proc/stat``: ``cpu user nice system idle iowait irq softirq
        steal guest guest_nice``. Guest time is already counted in user and nice."""
        ticks = [int(field) for field in cpu_line.split()[1:9]]
        return cls(total=sum(ticks), steal=ticks[7])

    @classmethod
    def now(cls) -> CpuTicks | None:
        """The machine's ticks so far; None where there is no ``/proc/stat`` (not Linux)."""
        try:
            with PROC_STAT.open() as stat:
                return cls.parse(stat.readline())
        except OSError:
            return None


def steal_percent(before: CpuTicks | None, after: CpuTicks | None) -> float | None:
    """The share of CPU time stolen between two readings, in percent (None if unknown)."""
    if before is None or after is None or after.total <= before.total:
        return None
    return round(100 * (after.steal - before.steal) / (after.total - before.total), 1)
