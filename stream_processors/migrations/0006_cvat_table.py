"""Give ``{database}.events`` CVAT's layout, whoever made it, and add the pipeline's hidden columns.

Three tables can be found here:

- none (cannot happen after 0002, but costs nothing to handle): it is made as CVAT makes it;
- CVAT's, made by its backend's ``init.py`` before eventpipe first started (an existing CVAT
  switching over, holding its users' history): it stays as it is, rows and all; the pipeline's
  columns are added, hidden, and CVAT's own later columns if its version predates them;
- eventpipe's own of 0002 (a ReplacingMergeTree whose key includes the pipeline's columns, shown
  by ``SELECT *``): it is renamed to ``events_eventpipe_v1``, CVAT's table is made in its place,
  and its rows are copied over, one per key (read ``FINAL``), before it is dropped.

Every statement is safe to run again after an interruption: the copy skips the keys already
copied, and the old table is dropped only after the copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from clickhouse_connect.driver.client import Client

from eventpipe.events_table import (
    ACCESS_TOKEN_COLUMN,
    COLUMN_TYPES,
    COLUMNS,
    CVAT_COLUMNS,
    PIPELINE_COLUMNS,
    PIPELINE_DEFAULTS,
    REMOTE_ADDR_COLUMN,
)
from stream_processors.migrations import table_columns

LEGACY_TABLE: Final = "events_eventpipe_v1"

# CVAT's own defaults: its init.py declares them so.
_DEFAULTS: Final = {
    "duration": "DEFAULT toUInt32(0)",
    ACCESS_TOKEN_COLUMN: "DEFAULT NULL",
    REMOTE_ADDR_COLUMN: "DEFAULT NULL",
}


def migrate(client: Client, names: Mapping[str, str]) -> None:
    database = names["database"]
    events, legacy = f"{database}.events", f"{database}.{LEGACY_TABLE}"
    found = table_columns(client, names["database_name"], "events")
    if "request_id" in found and found["request_id"][1] == "":
        # eventpipe's table of 0002: its pipeline columns are ordinary ones, in its sort key.
        client.command(f"RENAME TABLE {events} TO {legacy}")
    client.command(create_table_sql(events))
    for column in (ACCESS_TOKEN_COLUMN, REMOTE_ADDR_COLUMN, *PIPELINE_COLUMNS):
        client.command(f"ALTER TABLE {events} ADD COLUMN IF NOT EXISTS {_definition(column)}")
    old = table_columns(client, names["database_name"], LEGACY_TABLE)
    if old:
        _copy_legacy(client, legacy, events, old)
        client.command(f"DROP TABLE {legacy}")


def create_table_sql(table: str) -> str:
    """CVAT's ``events`` table (its ``init.py``, every migration applied) with the pipeline's
    hidden columns."""
    columns = ",\n    ".join(_definition(name) for name in COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS {table}\n(\n    {columns}\n)\n"
        "ENGINE = MergeTree\nPARTITION BY toYYYYMM(timestamp)\nORDER BY (timestamp)\n"
        "SETTINGS index_granularity = 8192"
    )


def _definition(column: str) -> str:
    if column in PIPELINE_DEFAULTS:
        default = f"MATERIALIZED {PIPELINE_DEFAULTS[column]}"
    else:
        default = _DEFAULTS.get(column, "")
    return f"`{column}` {COLUMN_TYPES[column]} {default}".rstrip()


def _copy_legacy(
    client: Client, legacy: str, events: str, old: Mapping[str, tuple[str, str]]
) -> None:
    # CVAT's count is a UInt16; eventpipe's was a UInt32.
    values = {name: f"`{name}`" for name in COLUMNS if name in old}
    values["count"] = "least(`count`, 65535)"
    for name in CVAT_COLUMNS:
        values.setdefault(name, "NULL")
    selected = ", ".join(f"{values[name]} AS `{name}`" for name in COLUMNS if name in values)
    targets = ", ".join(f"`{name}`" for name in COLUMNS if name in values)
    client.command(
        f"INSERT INTO {events} ({targets}) SETTINGS insert_allow_materialized_columns = 1"
        f" SELECT {selected} FROM {legacy} FINAL"
        f" WHERE (request_id, event_seq) NOT IN (SELECT request_id, event_seq FROM {events})"
    )
