"""The ``events`` table contract shared by the processor (writes it) and the exporter (reads it).

The table is CVAT's own (``components/analytics/clickhouse/init.py`` in CVAT's source): the same
columns, types, engine and sort key, so that CVAT's backend, which runs that script at every
start, finds it as it made it, and CVAT's export and dashboards read it as they read their own.
It lives in the database ``Settings.clickhouse_database`` (``cvat``); every ClickHouse client the
pipeline opens has it as its default database.

eventpipe adds :data:`PIPELINE_COLUMNS` as ``MATERIALIZED`` columns: ``SELECT *`` (CVAT's export,
the "All events" dashboard) does not show them, and rows CVAT or anyone else inserts get their
defaults. They identify each event the pipeline stored, so that a message Kafka delivers again is
not stored twice (:mod:`stream_processors.clickhouse_sink`).

The DDL lives in the versioned migrations of ``stream_processors/migrations``; a test checks that
the migrated table has exactly these columns, in this order, with these types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

TABLE: Final = "events"

# The range of the timestamp columns' type, DateTime64(3): a timestamp outside it cannot be stored.
EARLIEST_TIMESTAMP: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP: Final = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

# The fields of one CVAT event, in CVAT's order (also that of eventpipe.contracts.Event).
EVENT_COLUMNS: Final = (
    "scope",
    "obj_name",
    "obj_id",
    "obj_val",
    "source",
    "timestamp",
    "count",
    "duration",
    "project_id",
    "task_id",
    "job_id",
    "user_id",
    "user_name",
    "user_email",
    "org_id",
    "org_slug",
    "payload",
)

# The id of the API access token a CVAT server event was made with (CVAT >= 2.x).
ACCESS_TOKEN_COLUMN: Final = "access_token_id"
# The caller's address, as CVAT's server records it (CVAT >= 2.66).
REMOTE_ADDR_COLUMN: Final = "remote_addr"

# What CVAT's CSV export writes: ``SELECT * EXCEPT(remote_addr)``, 18 columns in this order.
EXPORT_COLUMNS: Final = (*EVENT_COLUMNS, ACCESS_TOKEN_COLUMN)
# What ``SELECT *`` shows: CVAT's table.
CVAT_COLUMNS: Final = (*EXPORT_COLUMNS, REMOTE_ADDR_COLUMN)

# What the pipeline adds, hidden from ``SELECT *``: the accepted request (or, for an event of
# CVAT's server, a key of its content) an event came in with, its place in that request, and when
# it was received. Rows the pipeline did not write hold the defaults of PIPELINE_DEFAULTS.
PIPELINE_COLUMNS: Final = ("request_id", "event_seq", "received_at")

# Every column the pipeline writes, in this order.
COLUMNS: Final = (*CVAT_COLUMNS, *PIPELINE_COLUMNS)

# The ClickHouse type of each column. CVAT's are those its init.py declares ('Etc/UTC' and 'UTC'
# are one zone; ``NULL`` there is Nullable here, as ClickHouse reports it).
COLUMN_TYPES: Final[dict[str, str]] = {
    "scope": "String",
    "obj_name": "Nullable(String)",
    "obj_id": "Nullable(UInt64)",
    "obj_val": "Nullable(String)",
    "source": "String",
    "timestamp": "DateTime64(3, 'Etc/UTC')",
    "count": "Nullable(UInt16)",
    "duration": "UInt32",
    "project_id": "Nullable(UInt64)",
    "task_id": "Nullable(UInt64)",
    "job_id": "Nullable(UInt64)",
    "user_id": "Nullable(UInt64)",
    "user_name": "Nullable(String)",
    "user_email": "Nullable(String)",
    "org_id": "Nullable(UInt64)",
    "org_slug": "Nullable(String)",
    "payload": "Nullable(String)",
    "access_token_id": "Nullable(UInt64)",
    "remote_addr": "Nullable(String)",
    "request_id": "UUID",
    "event_seq": "UInt32",
    "received_at": "DateTime64(3, 'UTC')",
}

# The MATERIALIZED expressions of the pipeline's columns: what a row that did not come through the
# pipeline (CVAT's history, a row CVAT inserted itself) holds there.
PIPELINE_DEFAULTS: Final[dict[str, str]] = {
    "request_id": "toUUID('00000000-0000-0000-0000-000000000000')",
    "event_seq": "0",
    "received_at": "toDateTime64(0, 3, 'UTC')",
}
