"""The pipeline's ClickHouse clients: one factory, used by the worker, the exporter and the CLI.

A client's default database is ``Settings.clickhouse_database`` (where the events table lives);
the DSN's own database (``default`` unless it names another) is its home, which keeps the
migrations' records (``stream_processors.migrations``).
"""

from __future__ import annotations

import weakref

import clickhouse_connect
from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from eventpipe.embedded import require
from eventpipe.settings import ENV_PREFIX, Settings, SettingsError

# The DSN's database of each client clickhouse_client opened; the client itself defaults to the
# events database from then on.
_home_databases: weakref.WeakKeyDictionary[Client, str] = weakref.WeakKeyDictionary()
# The clients clickhouse_client opened on an embedded engine (chdb://) rather than a server.
_embedded: weakref.WeakSet[Client] = weakref.WeakSet()


def clickhouse_client(settings: Settings) -> Client:
    """A client for ``chdb:///abs/path`` (embedded engine) or ``http(s)://...`` (a server) whose
    default database is ``settings.clickhouse_database``, created if missing.

    Create one per process: an embedded data path may only be opened by one client.
    """
    if settings.embedded_clickhouse:
        # clickhouse-connect's own error for a missing chdb names neither the extra nor the DSN.
        require(
            "chdb",
            f"the embedded ClickHouse engine (used while {ENV_PREFIX}CLICKHOUSE_DSN is empty or "
            "chdb://; give it a server's http(s):// address instead)",
        )
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
    if settings.embedded_clickhouse:
        _embedded.add(client)
    return client


def is_embedded(client: Client) -> bool:
    """Whether a client :func:`clickhouse_client` opened runs the engine in this process."""
    return client in _embedded


def home_database(client: Client) -> str:
    """The DSN's database of a client :func:`clickhouse_client` opened."""
    return _home_databases[client]
