"""How the export benchmark merges a contender's two runs (before and after the naive exporter)."""

import pytest

from benchmarks.export import _Run


def test_two_runs_report_their_mean_time_and_the_larger_peak() -> None:
    merged = _Run(1_000, 2.0, 30.0).averaged_with(_Run(1_000, 4.0, 10.0))
    assert merged.report() == {
        "rows": 1_000,
        "seconds": 3.0,
        "rows_per_s": 333,
        "peak_rss_growth_mb": 30.0,
    }


def test_runs_that_saw_different_rows_are_not_merged() -> None:
    with pytest.raises(RuntimeError, match="gave 1000 and 999 rows"):
        _Run(1_000, 2.0, 1.0).averaged_with(_Run(999, 2.0, 1.0))
