"""Versioned ClickHouse schema: the ``NNNN_name`` steps beside this module, applied in order.

A step is a ``.sql`` file holding one statement (the HTTP interface takes one per request), or,
where the step depends on what it finds (a table CVAT made, or one an earlier eventpipe made), a
``.py`` module whose ``migrate(client, names)`` does it. Write each so that, interrupted before its
record, it can simply run again (``IF NOT EXISTS``, checks of what is there).

Each applied version is recorded in ``schema_migrations``, so applying is idempotent and safe on
every worker start as well as from ``eventpipe migrate``.

Two databases are involved. ``{home}`` is the one the DSN names (``default`` unless it names
another): it keeps ``schema_migrations``, and held the events table that 0001 created until 0005
dropped it (0004 copied its rows over). ``{database}`` is ``Settings.clickhouse_database``
(``cvat``), where the events table lives from 0002 on, as CVAT's export and dashboards expect, and
where CVAT's backend may have made it first: 0006 gives it CVAT's layout in either case. Steps
name both through these placeholders (``names`` of a Python step); the pipeline's clients use
``{database}`` as their default database.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from importlib.resources import files
from typing import Final

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from eventpipe.clickhouse import home_database

log = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = "schema_migrations"

Step = Callable[[Client, Mapping[str, str]], None]


def migration_steps() -> list[tuple[str, Step]]:
    """``(version, step)`` for every migration shipped with the package, oldest first."""
    found: list[tuple[str, Step]] = []
    for entry in files(__package__).iterdir():
        version, _, suffix = entry.name.partition(".")
        if not version[:4].isdigit():
            continue
        if suffix == "sql":
            found.append((version, _sql_step(entry.read_text(encoding="utf-8"))))
        elif suffix == "py":
            module = importlib.import_module(f"{__package__}.{version}")
            found.append((version, module.migrate))
    return sorted(found, key=lambda item: item[0])


def _sql_step(sql: str) -> Step:
    def run(client: Client, names: Mapping[str, str]) -> None:
        client.command(sql.format_map(names))

    return run


def applied_versions(client: Client) -> set[str]:
    table = _migrations_table(client)
    client.command(
        f"CREATE TABLE IF NOT EXISTS {table} "
        "(version String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    return {row[0] for row in client.query(f"SELECT version FROM {table}").result_rows}


def apply_migrations(client: Client) -> list[str]:
    """Apply the migrations not applied yet; return their versions (empty when up to date).

    ``client`` comes from :func:`eventpipe.clickhouse.clickhouse_client`.
    """
    done = applied_versions(client)
    home, database = home_database(client), str(client.database)
    # Quoted for the SQL text; Python steps also get the names themselves.
    names = {
        "home": quote_identifier(home),
        "database": quote_identifier(database),
        "home_name": home,
        "database_name": database,
    }
    applied = []
    for version, step in migration_steps():
        if version in done:
            continue
        log.info("applying migration %s", version)
        step(client, names)
        client.insert(_migrations_table(client), [[version]], column_names=["version"])
        applied.append(version)
    return applied


def table_columns(client: Client, database: str, table: str) -> dict[str, tuple[str, str]]:
    """``{name: (type, default kind)}`` of a table's columns in their order; empty when there is
    no such table."""
    result = client.query(
        "SELECT name, type, default_kind FROM system.columns"
        " WHERE database = {database:String} AND table = {table:String} ORDER BY position",
        parameters={"database": database, "table": table},
    )
    return {name: (kind, default) for name, kind, default in result.result_rows}


def _migrations_table(client: Client) -> str:
    return f"{quote_identifier(home_database(client))}.{MIGRATIONS_TABLE}"
