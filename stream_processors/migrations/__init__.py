"""Versioned ClickHouse schema: the ``NNNN_name.sql`` files beside this module, applied in order.

Each applied version is recorded in ``schema_migrations``, so applying is idempotent and safe on
every worker start as well as from ``eventpipe migrate``. A file holds one statement (the HTTP
interface takes one per request); write DDL with ``IF NOT EXISTS`` so a migration interrupted
between its statement and its record can simply run again.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import Final

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from eventpipe.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = "schema_migrations"


def clickhouse_client(settings: Settings) -> Client:
    """A client for ``chdb:///abs/path`` (embedded engine) or ``http(s)://...`` (a server).

    Create one per process: an embedded data path may only be opened by one client.
    """
    return clickhouse_connect.get_client(dsn=settings.resolved_clickhouse_dsn)


def migration_files() -> list[tuple[str, str]]:
    """``(version, sql)`` for every migration shipped with the package, oldest first."""
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in files(__package__).iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def applied_versions(client: Client) -> set[str]:
    client.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        "(version String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    return {row[0] for row in client.query(f"SELECT version FROM {MIGRATIONS_TABLE}").result_rows}


def apply_migrations(client: Client) -> list[str]:
    """Apply the migrations not applied yet; return their versions (empty when up to date)."""
    done = applied_versions(client)
    applied = []
    for version, sql in migration_files():
        if version in done:
            continue
        log.info("applying migration %s", version)
        client.command(sql)
        client.insert(MIGRATIONS_TABLE, [[version]], column_names=["version"])
        applied.append(version)
    return applied
