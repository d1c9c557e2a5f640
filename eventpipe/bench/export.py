"""The human-readable report of ``eventpipe bench export`` (measured by exporter.benchmark)."""

from __future__ import annotations

from typing import Any


def format_export_report(report: dict[str, Any]) -> str:
    raw, export, naive = report["raw"], report["export"], report["naive"]
    return "\n".join(
        [
            f"eventpipe export benchmark ({report['rows']:,} rows)",
            f"  export (streamed CSV into the store): {export['rows_per_s']:,} rows/s, "
            f"peak RSS growth {export['peak_rss_growth_mb']} MB",
            f"  raw SELECT ... FORMAT CSVWithNames: {raw['rows_per_s']:,} rows/s, "
            f"peak RSS growth {raw['peak_rss_growth_mb']} MB",
            f"  naive (load all rows, csv.writer): {naive['rows_per_s']:,} rows/s, "
            f"peak RSS growth {naive['peak_rss_growth_mb']} MB",
            f"  ratio export / raw: {report['export_vs_raw_rate']}",
            f"  ratio export / naive: {report['export_vs_naive_rate']}",
        ]
    )
