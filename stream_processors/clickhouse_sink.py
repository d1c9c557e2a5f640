"""Write batches of rows into the ``events`` table, each row once, without blocking the event loop.

The table is CVAT's plain MergeTree, read by CVAT's export and dashboards without ``FINAL``, so a
copy of a row would show in every answer: the sink keeps copies out instead of leaving them to
merges. Before an insert it asks which of the batch's keys the table already holds, in the
batch's time span (the table's sort key, so only those granules are read), and inserts the rest.
A key is there only if an earlier insert of the same message got through, which happens when a
worker stops between its insert and its offset commit, or when CVAT's handler resends a batch.
Two copies within one batch are cut to one as well.

Rows go in as ``JSONEachRow`` through a plain statement, which carries the one setting that lets
an insert write the pipeline's hidden columns (see :mod:`eventpipe.events_table`). A body of
format 3 (a line per message) is unfolded into rows by the statement itself (``ARRAY JOIN``); a
batch with format-2 rows too (from older gateways, or rows read one by one to drop copies) takes
a second insert for those. A server receives the bodies as the request's data, which the
statement reads with ``input()`` (format 3) or as the rows to insert (format 2). The embedded
engine would take inline data only pasted into the statement's text, at three times the CPU of
reading it from a file (10.8 against 3.2 µs a row, 50,000 rows of 460 bytes), and ``input()``
does not read it there: on the embedded engine the bodies go through a temporary file that the
statement reads with ``file()``.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from typing import Final

from clickhouse_connect.driver import options
from clickhouse_connect.driver.binding import format_query_value
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from eventpipe.clickhouse import is_embedded
from eventpipe.contracts import USER_ACTIVITY_SCOPE
from eventpipe.events_table import COLUMN_TYPES, COLUMNS, CVAT_COLUMNS, PIPELINE_DEFAULTS, TABLE
from eventpipe.table_rows import FLAT_ROWS_VERSION, LINE_STRUCTURE, ROWS_FORMAT_VERSION, RowKey
from stream_processors import metrics
from stream_processors.rows import Rows, UnreadableRows

# How many keys one lookup names: the parameters ride in the URL of a request to a server.
LOOKUP_CHUNK: Final = 2_000

# ClickHouse's codes for data it cannot store (CANNOT_PARSE_TEXT, CANNOT_PARSE_QUOTED_STRING,
# CANNOT_PARSE_INPUT_ASSERTION_FAILED, ATTEMPT_TO_READ_AFTER_EOF, CANNOT_PARSE_DATE,
# CANNOT_PARSE_DATETIME, TYPE_MISMATCH, ARGUMENT_OUT_OF_BOUND, CANNOT_CONVERT_TYPE,
# CANNOT_PARSE_NUMBER, INCORRECT_DATA, TOO_LARGE_STRING_SIZE, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE,
# CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN, CANNOT_PARSE_UUID, and FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
# for a message whose keys do not match its events): the same rows would be refused again, so
# retrying them cannot help. Any other failure (the server away, too many parts, a missing table,
# a user without the rights an insert needs) is retried.
REFUSAL_CODES: Final = frozenset(
    {6, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 131, 321, 349, 376, 395}
)
_CODE: Final = re.compile(r"Code: (\d+)\.")

# Parallel parsing splits the data among threads and merges their blocks again: on batches of
# 50,500 rows one thread took less CPU per row (2.4-3.3 against 2.9-3.8 µs, four rounds of four
# inserts each) and less wall time. Measured on the embedded engine; a server parses with the
# same code.
_INSERT_SETTINGS: Final = (
    "insert_allow_materialized_columns = 1, date_time_input_format = 'best_effort',"
    " input_format_parallel_parsing = 0,"
    " input_format_json_named_tuples_as_objects = 1,"
    " input_format_json_defaults_for_missing_elements_in_named_tuple = 1"
)

# What each column takes from a format-3 line unfolded by ``ARRAY JOIN events AS e,
# arrayEnumerate(events) AS n``: a client request's rows share its id, address and time, and are
# numbered in the order sent; each event of CVAT's server has its own key (``ids``) and address.
_UNFOLDED: Final = {
    **{name: f"tupleElement(e, '{name}')" for name in CVAT_COLUMNS},
    "remote_addr": "if(empty(ids), remote_addr, tupleElement(e, 'remote_addr'))",
    "request_id": "if(empty(ids), request_id, ids[n])",
    "event_seq": "if(empty(ids), n - 1, 0)",
    "received_at": "received_at",
}
_UNFOLD: Final = (
    f"SELECT {', '.join(_UNFOLDED[name] for name in COLUMNS)} FROM {{source}}"
    " ARRAY JOIN events AS e, arrayEnumerate(events) AS n"
    # A line whose keys do not match its events (no request id, or not one id per event) is
    # refused as a whole, rather than stored under keys no lookup would find.
    " WHERE throwIf(if(empty(ids), request_id = %s, length(ids) != length(events)),"
    " 'the keys of a rows message do not match its events') = 0"
    # A client's user:activity events count for the working time only; CVAT stores none.
    " AND NOT (empty(ids) AND tupleElement(e, 'scope') = %s)"
    % (PIPELINE_DEFAULTS["request_id"], format_query_value(USER_ACTIVITY_SCOPE))
)


def _insert_into(table: str) -> str:
    return f"INSERT INTO {table} ({', '.join(COLUMNS)}) SETTINGS {_INSERT_SETTINGS}"


def insert_statement(table: str, version: int) -> str:
    """The statement that inserts bodies of rows messages of format ``version``, sent as its
    data, into ``table``."""
    if version == FLAT_ROWS_VERSION:
        return f"{_insert_into(table)} FORMAT JSONEachRow"
    source = f"input({format_query_value(LINE_STRUCTURE)})"
    return f"{_insert_into(table)} {_UNFOLD.format(source=source)} FORMAT JSONEachRow"


def file_insert_statement(table: str, version: int) -> str:
    """The statement that inserts the bodies of format ``version`` in the file named by its
    ``path`` parameter into ``table`` (the embedded engine's), with the file's structure as its
    ``structure`` parameter (:data:`FILE_STRUCTURES`)."""
    source = "file({path:String}, 'JSONEachRow', {structure:String})"
    if version == FLAT_ROWS_VERSION:
        return f"{_insert_into(table)} SELECT * FROM {source}"
    return f"{_insert_into(table)} {_UNFOLD.format(source=source)}"


# The structure of a file of bodies of each format, as file() reads them.
FILE_STRUCTURES: Final = {
    FLAT_ROWS_VERSION: ", ".join(f"{name} {COLUMN_TYPES[name]}" for name in COLUMNS),
    ROWS_FORMAT_VERSION: LINE_STRUCTURE,
}


class InsertRefused(Exception):
    """ClickHouse refused the rows themselves, or a message's rows that had to be read one by one
    cannot be: inserting them again would fail again."""


def is_refusal(exc: Exception) -> bool:
    if isinstance(exc, UnreadableRows):
        return True
    if not isinstance(exc, DatabaseError):
        return False
    found = _CODE.search(str(exc))
    return found is not None and int(found.group(1)) in REFUSAL_CODES


class ClickHouseSink:
    def __init__(self, client: Client, table: str = TABLE) -> None:
        self.client = client
        self.table = table
        self._embedded = is_embedded(client)
        # The statement per body format: a server reads the bodies as the request's data, the
        # embedded engine from a file.
        statement = file_insert_statement if self._embedded else insert_statement
        self._insert_sql = {version: statement(table, version) for version in FILE_STRUCTURES}
        self._lookup_sql = (
            f"SELECT request_id, event_seq FROM {table}"
            " WHERE timestamp >= fromUnixTimestamp64Milli({earliest:Int64}, 'UTC')"
            " AND timestamp <= fromUnixTimestamp64Milli({latest:Int64}, 'UTC')"
            " AND request_id IN {ids:Array(UUID)}"
        )
        # clickhouse-connect imports pandas on its first query, to ask whether the data is a
        # DataFrame: 0.4-0.9 s that would otherwise delay the first batch after every start.
        getattr(options, "pd", None)

    async def insert(self, rows: Rows) -> int:
        """Insert the rows the table does not hold yet; return how many were inserted. Raises
        :class:`InsertRefused` when ClickHouse refuses the rows themselves, and otherwise what the
        client raised.

        The caller then retries the whole batch: rows that landed before the failure are found
        by the lookup and not inserted twice.

        The client calls block (an HTTP request, or the embedded engine's work), so they run in a
        thread and the event loop keeps serving the Kafka consumer meanwhile.
        """
        started = time.perf_counter()
        try:
            inserted = await asyncio.to_thread(self._insert_new, rows)
        except Exception as exc:
            metrics.INSERT_FAILURES.inc()
            if is_refusal(exc):
                raise InsertRefused(str(exc)) from exc
            raise
        finally:
            metrics.INSERT_SECONDS.observe(time.perf_counter() - started)
        metrics.INSERT_ROWS.observe(inserted)
        metrics.ROWS_INSERTED.inc(inserted)
        metrics.ROWS_ALREADY_STORED.inc(len(rows) - inserted)
        return inserted

    def _insert_new(self, rows: Rows) -> int:
        stored = self._stored_keys(rows)
        if stored or rows.has_copies():
            rows = rows.without(stored)
        if not rows.chunks:
            return 0
        for version, bodies in rows.bodies().items():
            if self._embedded:
                self._insert_file(version, bodies)
            else:
                self.client.command(self._insert_sql[version], data=b"".join(bodies))
        return len(rows)

    def _insert_file(self, version: int, bodies: list[bytes]) -> None:
        with tempfile.NamedTemporaryFile(prefix="eventpipe-rows-", suffix=".jsonl") as file:
            # Written one by one: joined first, they would be copied once more.
            file.writelines(bodies)
            file.flush()
            self.client.command(
                self._insert_sql[version],
                parameters={"path": file.name, "structure": FILE_STRUCTURES[version]},
            )

    def _stored_keys(self, rows: Rows) -> set[RowKey]:
        if rows.earliest_ms is None or rows.latest_ms is None:
            return set()
        ids = rows.ids()
        stored: set[RowKey] = set()
        for start in range(0, len(ids), LOOKUP_CHUNK):
            result = self.client.query(
                self._lookup_sql,
                parameters={
                    "earliest": rows.earliest_ms,
                    "latest": rows.latest_ms,
                    "ids": ids[start : start + LOOKUP_CHUNK],
                },
            )
            stored.update((str(request_id), seq) for request_id, seq in result.result_rows)
        return stored
