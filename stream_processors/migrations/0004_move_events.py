"""Copy the events of an installation made before 0002 into ``{database}.events``.

A fresh installation has none. The target may be eventpipe's table of 0002 or, when CVAT's backend
made ``{database}.events`` first, CVAT's own: the rows carry the columns both tables have. Run
twice (interrupted before its record), it copies every row again: into eventpipe's table, 0006
keeps one of each (it copies that table with ``FINAL``); into CVAT's own table, which has no key
yet, the copies stay. 0005 drops the old table only once this is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping

from clickhouse_connect.driver.client import Client

from stream_processors.migrations import table_columns


def migrate(client: Client, names: Mapping[str, str]) -> None:
    source = table_columns(client, names["home_name"], "events")
    target = table_columns(client, names["database_name"], "events")
    if not source:
        return
    (count,) = client.query(f"SELECT count() FROM {names['home']}.events").result_rows[0]
    if not count:
        return
    shared = ", ".join(f"`{name}`" for name in source if name in target)
    client.command(
        f"INSERT INTO {names['database']}.events ({shared})"
        f" SELECT {shared} FROM {names['home']}.events"
    )
