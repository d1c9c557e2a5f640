"""Versioned migrations against the embedded ClickHouse engine."""

from __future__ import annotations

from pathlib import Path

from eventpipe.events_table import COLUMNS, TABLE
from eventpipe.settings import Settings
from stream_processors.migrations import apply_migrations, clickhouse_client, migration_files


def test_migrations_apply_once_and_create_the_events_contract(tmp_path: Path) -> None:
    # Closed at the end: a process may hold one embedded engine path at a time.
    with clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")) as client:
        first = apply_migrations(client)
        second = apply_migrations(client)
        recorded = client.query("SELECT version FROM schema_migrations ORDER BY version")
        described = client.query(f"DESCRIBE TABLE {TABLE}").result_rows

    assert first == [version for version, _ in migration_files()]
    assert first[0] == "0001_create_events"
    assert second == []
    assert [row[0] for row in recorded.result_rows] == first
    assert tuple(row[0] for row in described) == COLUMNS
