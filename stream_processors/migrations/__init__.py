"""Versioned ClickHouse schema: the ``NNNN_name.sql`` files beside this module, applied in order.

Each applied version is recorded in ``schema_migrations``, so applying is idempotent and safe on
every worker start as well as from ``eventpipe migrate``. A file holds one statement (the HTTP
interface takes one per request); write DDL with ``IF NOT EXISTS`` so a migration interrupted
between its statement and its record can simply run again.

Two databases are involved. ``{home}`` is the one the DSN names (``default`` unless it names
another): it keeps ``schema_migrations``, and held the events table up to migration 0001.
``{database}`` is ``Settings.clickhouse_database`` (``cvat``), where the events table lives from
0002 on, as CVAT's export and dashboards expect. Migration files name both through these
placeholders; the pipeline's clients use ``{database}`` as their default database.
"""

from __future__ import annotations

import logging
import weakref
from importlib.resources import files
from typing import Final

import clickhouse_connect
from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from eventpipe.settings import ENV_PREFIX, Settings, SettingsError

log = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = "schema_migrations"
# The DSN's database of each client clickhouse_client opened; the client itself defaults to the
# events database from then on.
_home_databases: weakref.WeakKeyDictionary[Client, str] = weakref.WeakKeyDictionary()


def clickhouse_client(settings: Settings) -> Client:
    """A client for ``chdb:///abs/path`` (embedded engine) or ``http(s)://...`` (a server) whose
    default database is ``settings.clickhouse_database``, created if missing.

    Create one per process: an embedded data path may only be opened by one client.
    """
    client = clickhouse_connect.get_client(dsn=settings.resolved_clickhouse_dsn)
    home = str(client.command("SELECT currentDatabase()"))
    database = settings.clickhouse_database
    if database == home:
        client.close()
        raise SettingsError(
            f"{ENV_PREFIX}CLICKHOUSE_DATABASE={database!r} is also the database of "
            f"{ENV_PREFIX}CLICKHOUSE_DSN, which keeps the migrations' records and the events of "
            "earlier versions: name another database in the DSN (or none, for 'default')"
        )
    client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
    client.database = database
    _home_databases[client] = home
    return client


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

    ``client`` comes from :func:`clickhouse_client`.
    """
    done = applied_versions(client)
    names = {
        "home": quote_identifier(_home_databases[client]),
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
    return f"{quote_identifier(_home_databases[client])}.{MIGRATIONS_TABLE}"
