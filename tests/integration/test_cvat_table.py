"""``cvat.events`` as CVAT reads it: its own export query and the queries of its dashboards.

The rows are made by the processor's own code (see ``cvat_table_support``) and read through
clickhouse-connect with ``cvat`` as the default database, as CVAT's ``export.py`` connects.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from eventpipe.events_table import COLUMNS
from tests.integration.cvat_table_support import (
    NAIVE_T0,
    SERVER_BATCH,
    T0,
    cvat_client,
    insert,
    populate,
)


@pytest.fixture
def cvat_reader(events_clickhouse: Client, tmp_path: Path) -> Iterator[Client]:
    """The table populated by the processor's code, and a client connected as CVAT connects."""
    populate(events_clickhouse)
    reader = cvat_client(tmp_path / "clickhouse")
    yield reader
    reader.close()


def rows(client: Client, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


def test_cvats_export_query_reads_every_column_in_time_order(cvat_reader: Client) -> None:
    # CVAT's events export, as cvat/apps/events/export.py builds it for an org and a time range.
    result = cvat_reader.query(
        "SELECT * FROM events WHERE timestamp >= {from:DateTime64} AND timestamp <= {to:DateTime64}"
        " AND org_id = {org_id:UInt64} ORDER BY timestamp ASC",
        parameters={"from": T0, "to": T0 + timedelta(minutes=75), "org_id": 7},
    )
    assert result.column_names == COLUMNS
    columns = result.column_names
    got = [dict(zip(columns, row, strict=True)) for row in result.result_rows]
    assert [(r["scope"], r["user_name"]) for r in got] == [
        ("load:cvat", "alice"),
        ("create:task", "alice"),
        ("send:working_time", "alice"),
        ("load:cvat", "bob"),
        ("send:working_time", "alice"),
        ("send:working_time", "bob"),
    ]
    assert got[1]["access_token_id"] == 4
    # clickhouse-connect hands a UTC column's values over without an offset.
    assert got[1]["timestamp"] == NAIVE_T0 + timedelta(minutes=1)
    assert got[2]["duration"] == 60_000 and got[2]["source"] == "server"


def test_working_time_per_user_job_task_and_project(cvat_reader: Client) -> None:
    def per(column: str) -> dict[Any, int]:
        found = rows(
            cvat_reader,
            f"SELECT {column}, sum(JSONExtractUInt(payload, 'working_time')) FROM cvat.events"
            " WHERE JSONHas(payload, 'working_time') AND timestamp >= {from:DateTime64}"
            f" GROUP BY {column}",
            **{"from": T0},
        )
        return dict(found)

    assert per("user_name") == {"alice": 90_000, "bob": 120_000}
    assert per("job_id") == {10: 90_000, 11: 120_000}
    assert per("task_id") == {5: 210_000}
    assert per("project_id") == {2: 210_000}


def test_platforms_active_users_and_exceptions(cvat_reader: Client) -> None:
    platforms = rows(
        cvat_reader,
        "SELECT JSON_VALUE(payload, '$.platform.name') AS platform, count() FROM cvat.events"
        " WHERE scope = 'load:cvat' GROUP BY platform ORDER BY platform",
    )
    assert platforms == [("Chrome", 1), ("Firefox", 1)]
    assert rows(cvat_reader, "SELECT uniqExact(user_id) FROM cvat.events") == [(2,)]
    exceptions = rows(
        cvat_reader,
        "SELECT user_name, JSONExtractString(payload, 'message') FROM cvat.events"
        " WHERE scope = 'send:exception'",
    )
    assert exceptions == [("bob", "ValueError: bad frame")]


def test_events_per_interval(cvat_reader: Client) -> None:
    hourly = rows(
        cvat_reader,
        "SELECT toStartOfInterval(timestamp, INTERVAL 1 HOUR) AS t, count(), uniqExact(user_id)"
        " FROM cvat.events GROUP BY t ORDER BY t",
    )
    assert hourly == [(NAIVE_T0, 3, 1), (NAIVE_T0 + timedelta(hours=1), 4, 2)]


def test_a_redelivered_batch_counts_once_with_final(
    events_clickhouse: Client, cvat_reader: Client
) -> None:
    # Kafka may deliver a batch twice; its rows get the same key. Until ClickHouse merges the
    # parts, only reads with FINAL (or the `final` setting of CVAT's ClickHouse user) hide them.
    insert(events_clickhouse, [SERVER_BATCH])
    total = (
        "SELECT sum(JSONExtractUInt(payload, 'working_time')) FROM cvat.events"
        " WHERE JSONHas(payload, 'working_time')"
    )
    assert cvat_reader.query(total, settings={"final": 1}).result_rows == [(210_000,)]
