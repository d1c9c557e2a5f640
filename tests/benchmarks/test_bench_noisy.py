"""The noisy-tenant benchmark's verdict: the noisy phases' median p99 against the spread of the
phases without a noisy neighbour."""

from pathlib import Path
from typing import Any

import pytest

from benchmarks.noisy import (
    ALONE,
    AT_LIMIT,
    NOISY,
    format_noisy_report,
    run_noisy_bench,
    summarize,
)
from eventpipe.errors import CommandError
from eventpipe.settings import Settings


def rounds(alone: list[float], at_limit: list[float], noisy: list[float]) -> list[dict[str, Any]]:
    def phase(p99: float, neighbour: bool) -> dict[str, Any]:
        # A typical request takes a quarter of the slowest one in a hundred.
        result: dict[str, Any] = {
            "quiet": {"p50_ms": p99 / 4, "p99_ms": p99},
            "host_steal_percent": p99 / 10,
        }
        if neighbour:
            result["neighbour_sent_events_per_s"] = 50_000
            result["neighbour_accepted_events_per_s"] = 5_000
        return result

    return [
        {ALONE: phase(a, False), AT_LIMIT: phase(b, True), NOISY: phase(c, True)}
        for a, b, c in zip(alone, at_limit, noisy, strict=True)
    ]


def test_a_noisy_median_inside_the_calm_range_is_within_noise() -> None:
    summary = summarize(rounds([10.0, 12.0, 20.0], [11.0, 14.0, 26.0], [19.0, 17.0, 25.0]))
    assert summary["noise_range_ms"] == [10.0, 26.0]
    assert summary["quiet_p99_median_ms"][NOISY] == 19.0
    assert summary["quiet_p50_median_ms"] == {ALONE: 3.0, AT_LIMIT: 3.5, NOISY: 4.75}
    assert summary["within_noise"] is True
    assert summary["noisy_vs_alone"] == 1.58
    assert summary["noisy_vs_at_limit"] == 1.36
    assert summary["noisy_vs_at_limit_by_round"] == [1.73, 1.21, 0.96]
    assert summary["host_steal_percent"][NOISY] == [1.9, 1.7, 2.5]


def test_a_noisy_median_above_every_calm_phase_is_not_within_noise() -> None:
    summary = summarize(rounds([6.7, 10.6, 16.6], [13.4, 10.1, 11.1], [13.6, 28.8, 18.8]))
    assert summary["noise_range_ms"] == [6.7, 16.6]
    assert summary["within_noise"] is False
    assert summary["neighbour_accepted_events_per_s"][NOISY] == [5_000] * 3


def test_the_report_marks_a_phase_whose_steal_could_not_be_read() -> None:
    measured = rounds([10.0, 12.0, 20.0], [11.0, 14.0, 26.0], [19.0, 17.0, 25.0])
    # No /proc/stat, as off Linux: the phase has no steal reading.
    measured[1][NOISY]["host_steal_percent"] = None
    report = {
        "tenant_limit_events_per_s": 5_000,
        "quiet_events_per_s": 2_500,
        "neighbour_events_per_s_offered": {AT_LIMIT: 5_000, NOISY: 50_000},
        "summary": summarize(measured),
    }
    steal_lines = [line for line in format_noisy_report(report).splitlines() if "steal" in line]
    assert len(steal_lines) == 3
    assert steal_lines[2].endswith(f"{NOISY:<24} 1.9%, ?, 2.5%")


def test_a_single_round_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--rounds must be at least 2"):
        run_noisy_bench(Settings(data_dir=tmp_path), limit=5_000, seconds=1, rounds=1)
    assert list(tmp_path.iterdir()) == []
