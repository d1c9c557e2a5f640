"""CPU time of the processes of a run, read from ``/proc``: where an ingest run's time goes.

A process's time counts its threads (the embedded ClickHouse engine's too); a role's time counts
the process and every process below it (a gateway's worker processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class _Process:
    parent: int
    cpu_seconds: float
    command: str


def _processes() -> dict[int, _Process]:
    found: dict[int, _Process] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        found[int(entry.name)] = _Process(int(fields[1]), ticks / _TICKS_PER_SECOND, command)
    return found


def _tree_seconds(root: int, processes: dict[int, _Process]) -> float:
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.parent, []).append(pid)
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        if pid in processes:
            total += processes[pid].cpu_seconds
        pending += children.get(pid, [])
    return total


def listening_process(port: int) -> int | None:
    """The process started with ``port`` in its command line (the broker's listener)."""
    needle = f":{port}"
    for pid, process in _processes().items():
        if needle in process.command and pid != os.getpid():
            return pid
    return None


def cpu_seconds(roles: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds used so far by each role's process tree; the load generator (this process)
    counts itself only, since the pipeline's processes are its children."""
    processes = _processes()
    seconds = {
        role: _tree_seconds(pid, processes) for role, pid in roles.items() if pid is not None
    }
    own = processes.get(os.getpid())
    seconds["load generator"] = own.cpu_seconds if own else 0.0
    return seconds


def micros_per_event(
    before: dict[str, float], after: dict[str, float], events: int
) -> dict[str, float]:
    """Each role's CPU microseconds per event between two readings, and their total."""
    if not events:
        return {}
    spent = {role: (after[role] - before.get(role, 0.0)) * 1e6 / events for role in after}
    spent["total"] = sum(spent.values())
    return {role: round(value, 2) for role, value in spent.items()}
