"""The ``events`` table contract shared by the processor (writes it) and the exporter (reads it).

The table lives in the database ``Settings.clickhouse_database`` (``cvat``, where CVAT's export and
dashboards look); every ClickHouse client the pipeline opens has it as its default database.

The DDL lives in the versioned migrations of ``stream_processors/migrations``; a test checks that
the migrated table has exactly these columns in this order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

TABLE: Final = "events"

# The range of the timestamp columns' type, DateTime64(3): a timestamp outside it cannot be stored.
EARLIEST_TIMESTAMP: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP: Final = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

# The CVAT columns, in the order CVAT's CSV export uses; exports start with these.
CVAT_COLUMNS: Final = (
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

# The id of the API access token a CVAT server event was made with (CVAT 2.x). It follows CVAT's
# columns in the table, as in CVAT's own schema; exports keep to the columns above.
ACCESS_TOKEN_COLUMN: Final = "access_token_id"

# What the pipeline adds: the accepted request an event came in with and its place in it, which
# together identify an event and let the table drop a redelivered copy; and when it was received.
PIPELINE_COLUMNS: Final = ("request_id", "event_seq", "received_at")

COLUMNS: Final = (*CVAT_COLUMNS, ACCESS_TOKEN_COLUMN, *PIPELINE_COLUMNS)
