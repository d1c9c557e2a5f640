"""``eventpipe bench export``: an export against raw ClickHouse CSV output and a naive exporter,
side by side, reported as ratios from one run rather than bare times (a shared machine's speed
drifts between runs; see docs/benchmarks.md). Linux only: peak memory comes from ``/proc/self``
(reset through ``clear_refs``).
"""

from __future__ import annotations

import csv
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from eventpipe.contracts import ExportFilter, ExportRequest
from eventpipe.events_table import CVAT_COLUMNS, TABLE
from eventpipe.export_records import ExportState
from eventpipe.settings import Settings
from eventpipe.stores import FilesystemStore
from exporter.export_job import JobOptions, run_export

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Inserted in batches of the processor's default size, so the table has the many parts that
# FINAL must merge in production.
INSERT_BATCH = 50_000
_INSERT_SQL = f"""
INSERT INTO {TABLE} SELECT
    'draw:object', if(number % 3 = 0, NULL, concat('obj', toString(number))), number,
    if(number % 7 = 0, '=HYPERLINK("x")', 'value'), 'client',
    {{t0:DateTime64(3, 'UTC')}} + toIntervalMillisecond(number * 37), 1, 10,
    number % 10, number % 100, number % 1000, number % 50, 'user', 'user@example.com',
    if(number % 2 = 0, NULL, number % 5), 'org', '{{"working_time": 1200, "note": "text"}}', NULL,
    generateUUIDv4(), 0, now64(3)
FROM numbers({{start:UInt64}}, {{count:UInt64}})
"""


@dataclass
class _Run:
    rows: int
    seconds: float
    rss_growth_mb: float

    def averaged_with(self, other: _Run) -> _Run:
        """Both runs as one: their mean time and the larger peak."""
        if other.rows != self.rows:
            raise RuntimeError(
                f"two runs over the same table gave {self.rows} and {other.rows} rows"
            )
        return _Run(
            self.rows,
            (self.seconds + other.seconds) / 2,
            max(self.rss_growth_mb, other.rss_growth_mb),
        )

    def report(self) -> dict[str, float]:
        return {
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds),
            "peak_rss_growth_mb": round(self.rss_growth_mb, 1),
        }


def run_export_benchmark(
    rows: int = 1_000_000, *, work_dir: Path | None = None, max_threads: int = 1
) -> dict[str, Any]:
    """Fill an embedded engine with ``rows`` events, then time and weigh three ways out (the first
    two twice, around the third, and reported as the mean), each with the engine's threads capped
    at ``max_threads``, as the exporter caps its own:

    - ``raw``: the export's rows as ``SELECT <CVAT columns> FROM events ORDER BY timestamp
      FORMAT CSVWithNames``, formatted by the engine and returned whole;
    - ``export``: the exporter's job, CSV streamed into a filesystem store;
    - ``naive``: ``client.query`` of the same rows, written with ``csv.writer``.

    Must run in a process that has no other chDB path open.
    """
    from eventpipe.clickhouse import clickhouse_client
    from stream_processors.migrations import apply_migrations

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        client = clickhouse_client(Settings(clickhouse_dsn=f"chdb://{Path(tmp, 'clickhouse')}"))
        try:
            apply_migrations(client)
            _fill(client, rows)
            store = FilesystemStore(Path(tmp, "exports"))
            # Palindromic order, so that the two shorter contenders' mean times centre on the
            # naive one's: a shared machine's speed drifts over its dozen seconds, and measured
            # once in a row the ratios carried that drift (export / naive went from 4.6 to 6.7
            # between runs).
            raw_first = _measure(lambda: _raw(client, max_threads))
            export_first = _measure(lambda: _export(client, store, max_threads))
            naive = _measure(lambda: _naive(client, Path(tmp, "naive.csv"), max_threads))
            export = export_first.averaged_with(
                _measure(lambda: _export(client, store, max_threads))
            )
            raw = raw_first.averaged_with(_measure(lambda: _raw(client, max_threads)))
        finally:
            client.close()
    return {
        "rows": rows,
        "raw": raw.report(),
        "export": export.report(),
        "naive": naive.report(),
        "export_vs_raw_rate": round(raw.seconds / export.seconds, 3),
        "naive_vs_raw_rate": round(raw.seconds / naive.seconds, 3),
        "export_vs_naive_rate": round(naive.seconds / export.seconds, 2),
    }


def _fill(client: Client, rows: int) -> None:
    for start in range(0, rows, INSERT_BATCH):
        count = min(INSERT_BATCH, rows - start)
        client.command(_INSERT_SQL, parameters={"t0": T0, "start": start, "count": count})


def _select_all(max_threads: int) -> str:
    # With the thread cap the export has, a contender is neither helped by a second core nor
    # hurt when the machine's other work takes it. Uncapped, the raw query ran on both cores,
    # and export / raw ranged from 0.54 to 0.92 over ten runs; capped, four runs gave 0.85-0.87.
    return (
        f"SELECT {', '.join(CVAT_COLUMNS)} FROM {TABLE} ORDER BY timestamp"
        f" SETTINGS max_threads = {int(max_threads)}"
    )


def _raw(client: Client, max_threads: int) -> int:
    data = client.raw_query(_select_all(max_threads), fmt="CSVWithNames")
    return data.count(b"\n") - 1


def _export(client: Client, store: FilesystemStore, max_threads: int) -> int:
    request = ExportRequest(
        query_id=uuid.uuid4(),
        owner_user_id=1,
        filter=ExportFilter(since=T0, until=T0 + timedelta(days=3650)),
        filename="bench.csv",
    )
    options = JobOptions(ttl=timedelta(hours=1), max_threads=max_threads)
    status = run_export(request, client, store, options)
    if status.state is not ExportState.FINISHED:
        raise RuntimeError(f"the benchmark export failed: {status.error}")
    return status.rows


def _naive(client: Client, path: Path, max_threads: int) -> int:
    result = client.query(_select_all(max_threads))
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CVAT_COLUMNS)
        writer.writerows(result.result_rows)
    return len(result.result_rows)


def _measure(run: Callable[[], int]) -> _Run:
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
    before = _proc_status_mb("VmHWM")
    started = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - started
    # The kernel's RSS counters are cached per thread and may lag by a few hundred KB, so a run
    # that allocates nothing can read a hair below its starting peak; that is no growth.
    return _Run(rows, seconds, max(0.0, _proc_status_mb("VmHWM") - before))


def _proc_status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


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
