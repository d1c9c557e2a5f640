"""The one ClickHouse query an export runs, built from an :class:`ExportFilter`.

It reads what CVAT's own export reads (``cvat/apps/events/export.py``): CVAT's 18 columns
(``SELECT * EXCEPT(remote_addr)``), events of the ``server`` and ``client`` sources but no
``send:exception``, in time order. And it writes them as CVAT's export writes them, Python's
``csv.writer`` over clickhouse-connect's rows, so that a file reads the same before and after an
installation switches to eventpipe: a cell is quoted only when it holds a comma, a quote or a line
break (quotes doubled), NULL is an empty cell, a timestamp is ``str()`` of a UTC datetime
(``2026-08-12 10:00:00.123000+00:00``, no fraction on a whole second), rows end in CRLF. The
engine renders each row as one line of that text, so the exporter only moves bytes.

Values never enter the SQL text: every filter value is a server-side parameter (``{name:Type}``),
and the SQL is assembled only from constants in this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from eventpipe.contracts import ID_FILTERS, ExportFilter, as_utc
from eventpipe.events_table import COLUMN_TYPES, EXPORT_COLUMNS, TABLE

# The output format: each row is one string, already CSV (CRLF included), framed by its length;
# the embedded engine streams it, as it streams no format that writes strings unescaped.
RESULT_FORMAT: Final = "RowBinary"
# What CVAT's export leaves out.
_CVAT_CONDITIONS: Final = ("source IN ('server', 'client')", "scope != 'send:exception'")

# A cell starting with one of these is run as a formula by spreadsheet programs (OWASP "CSV
# injection"); a leading apostrophe makes it text.
_FORMULA_START: Final = r"('=', '+', '-', '@', '\t', '\r')"
# What makes csv.writer quote a field: the delimiter, the quote character, a line break.
_NEEDS_QUOTES: Final = r"[',', '\"', '\r', '\n']"

_SETTINGS: Final[dict[str, str | int]] = {
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
    """The SELECT of one export, without a FORMAT clause (the caller adds :data:`RESULT_FORMAT`).

    ``max_threads`` 0 keeps the server's default; the embedded engine shares its process with the
    rest of the worker, and one thread reads in order with a fraction of the memory.
    """
    conditions = [
        *_CVAT_CONDITIONS,
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

    cells = ", ',', ".join(_cell(name, neutralize_formulas) for name in EXPORT_COLUMNS)
    settings: dict[str, str | int] = dict(_SETTINGS)
    if max_threads:
        settings["max_threads"] = max_threads
    # Settings ride in the SQL itself, so that a chDB client streams the result (per-call
    # settings make its backend buffer it).
    sql = (
        f"SELECT concat({cells}, '\\r\\n') AS csv_row FROM {TABLE}"
        f" WHERE {' AND '.join(conditions)}"
        f" ORDER BY timestamp SETTINGS {_settings_clause(settings)}"
    )
    return ExportQuery(sql, parameters)


def csv_header() -> bytes:
    """The CSV header row, as ``csv.writer`` writes the column names."""
    return (",".join(EXPORT_COLUMNS) + "\r\n").encode()


def _cell(column: str, neutralize_formulas: bool) -> str:
    kind = COLUMN_TYPES[column]
    if kind.startswith("DateTime64"):
        return _timestamp_text(column)
    if "String" not in kind:
        return f"ifNull(toString({column}), '')"
    text = f"ifNull({column}, '')"
    if neutralize_formulas:
        text = f"if(substring({text}, 1, 1) IN {_FORMULA_START}, concat('''', {text}), {text})"
    return (
        f"if(multiSearchAny({text}, {_NEEDS_QUOTES}),"
        f" concat('\"', replaceAll({text}, '\"', '\"\"'), '\"'), {text})"
    )


def _timestamp_text(column: str) -> str:
    # str(datetime): microseconds only when there are any; the column holds milliseconds.
    return (
        f"concat(formatDateTime({column}, '%Y-%m-%d %H:%i:%S', 'UTC'),"
        f" if(toMillisecond({column}) = 0, '',"
        f" concat('.', leftPad(toString(toMillisecond({column})), 3, '0'), '000')), '+00:00')"
    )


def _settings_clause(settings: dict[str, str | int]) -> str:
    return ", ".join(
        f"{name} = {value}" if isinstance(value, int) else f"{name} = '{value}'"
        for name, value in settings.items()
    )
