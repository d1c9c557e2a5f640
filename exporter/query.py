"""The one ClickHouse query an export runs, built from an :class:`ExportFilter`.

Values never enter the SQL text: every filter value is a server-side parameter (``{name:Type}``),
and the SQL is assembled only from constants in this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from eventpipe.contracts import ID_FILTERS, ExportFilter, as_utc
from eventpipe.events_table import CVAT_COLUMNS, TABLE

# Columns that can hold text a user typed (or that the pipeline copied from one) and so could
# hold a spreadsheet formula. The others are numbers and timestamps.
TEXT_COLUMNS: Final = frozenset(
    {"scope", "obj_name", "obj_val", "source", "user_name", "user_email", "org_slug", "payload"}
)

# A cell starting with one of these is run as a formula by spreadsheet programs (OWASP "CSV
# injection"); a leading apostrophe makes it text.
_FORMULA_START = r"('=', '+', '-', '@', '\t', '\r')"

# Settings that make ClickHouse write the CSV exactly as CVAT's API documents it.
CSV_SETTINGS: Final[dict[str, str | int]] = {
    # 2026-11-25T10:00:00.123Z: ISO-8601 with an explicit UTC offset.
    "date_time_output_format": "iso",
    # An empty cell for NULL (the default is \N). An empty string stays "" so the two differ.
    "format_csv_null_representation": "",
    # ORDER BY timestamp is served by the table's sort key (read in order, no sort buffer); this
    # bounds memory should a future key or engine change make ClickHouse sort after all.
    "max_bytes_before_external_sort": 256 * 1024 * 1024,
}


@dataclass(frozen=True)
class ExportQuery:
    sql: str
    parameters: dict[str, Any]


def build_export_query(
    export_filter: ExportFilter, *, neutralize_formulas: bool, max_threads: int = 0
) -> ExportQuery:
    """The SELECT of one export, without a FORMAT clause (the caller picks the format).

    ``max_threads`` 0 keeps the server's default; the embedded engine shares its process with the
    rest of the worker, and one thread reads in order with a fraction of the memory.
    """
    conditions = [
        "timestamp >= {since:DateTime64(3, 'UTC')}",
        "timestamp <= {until:DateTime64(3, 'UTC')}",
    ]
    parameters: dict[str, Any] = {
        "since": as_utc(export_filter.since),
        "until": as_utc(export_filter.until),
    }
    for name in ID_FILTERS:
        value = getattr(export_filter, name)
        if value is not None:
            conditions.append(f"{name} = {{{name}:UInt64}}")
            parameters[name] = value

    columns = ", ".join(
        _neutralized(name) if neutralize_formulas and name in TEXT_COLUMNS else name
        for name in CVAT_COLUMNS
    )
    settings: dict[str, str | int] = dict(CSV_SETTINGS)
    if max_threads:
        settings["max_threads"] = max_threads
    # FINAL hides the copies a Kafka redelivery inserted; on this table it reads in key order and
    # costs little (measured in benchmarks.export). Settings ride in the SQL itself, so that a
    # chDB client streams the result (per-call settings make its backend buffer it).
    sql = (
        f"SELECT {columns} FROM {TABLE} FINAL WHERE {' AND '.join(conditions)}"
        f" ORDER BY timestamp SETTINGS {_settings_clause(settings)}"
    )
    return ExportQuery(sql, parameters)


def csv_header() -> bytes:
    """The CSV header row. Written by us, not by ``CSVWithNames``: the embedded engine only
    streams formats without a header (each streamed block would repeat it)."""
    return (",".join(CVAT_COLUMNS) + "\n").encode()


def _neutralized(column: str) -> str:
    # The alias keeps the CSV column name. NULL stays NULL: the IN test is NULL, so if() takes
    # the else branch. No WHERE condition names a text column, so the alias shadows nothing.
    return (
        f"if(substring({column}, 1, 1) IN {_FORMULA_START}, concat('''', {column}), {column})"
        f" AS {column}"
    )


def _settings_clause(settings: dict[str, str | int]) -> str:
    return ", ".join(
        f"{name} = {value}" if isinstance(value, int) else f"{name} = '{value}'"
        for name, value in settings.items()
    )
