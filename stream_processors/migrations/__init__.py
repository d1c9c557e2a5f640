"""Versioned ClickHouse schema: the ``NNNN_name.sql`` files beside this module, applied in order.

Each applied version is recorded in ``schema_migrations``, so applying is idempotent and safe on
every worker start as well as from ``eventpipe migrate``. A file holds one statement (the HTTP
interface takes one per request); write DDL with ``IF NOT EXISTS`` so a migration interrupted
between its statement and its record can simply run again.

Two databases are involved. ``{home}`` is the one the DSN names (``default`` unless it names
another): it keeps ``schema_migrations``, and held the events table that 0001 created until 0005
dropped it (0004 copied its rows over). ``{database}`` is ``Settings.clickhouse_database``
(``cvat``), where the events table lives from 0002 on, as CVAT's export and dashboards expect.
Migration files name both through these placeholders; the pipeline's clients use ``{database}``
as their default database.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import Final

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from eventpipe.clickhouse import home_database

log = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = "schema_migrations"


def migration_files() -> list[tuple[str, str]]:
    """``(version, sql)`` for every migration shipped with the package, oldest first."""
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in files(__package__).iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


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
    names = {
        "home": quote_identifier(home_database(client)),
        "database": quote_identifier(str(client.database)),
    }
    applied = []
    for version, sql in migration_files():
        if version in done:
            continue
        log.info("applying migration %s", version)
        client.command(sql.format_map(names))
        client.insert(_migrations_table(client), [[version]], column_names=["version"])
        applied.append(version)
    return applied


def _migrations_table(client: Client) -> str:
    return f"{quote_identifier(home_database(client))}.{MIGRATIONS_TABLE}"
