"""Versioned migrations against the embedded ClickHouse engine."""

from __future__ import annotations

from pathlib import Path

from eventpipe.events_table import COLUMNS, TABLE
from eventpipe.settings import Settings
from stream_processors.migrations import apply_migrations, clickhouse_client, migration_files


def test_migrations_apply_once_and_create_the_events_contract(tmp_path: Path) -> None:
    client = clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))

    first = apply_migrations(client)
    second = apply_migrations(client)

    assert first == [version for version, _ in migration_files()]
    assert first[0] == "0001_create_events"
    assert second == []
    recorded = client.query("SELECT version FROM schema_migrations ORDER BY version").result_rows
    assert [row[0] for row in recorded] == first
    described = client.query(f"DESCRIBE TABLE {TABLE}").result_rows
    assert tuple(row[0] for row in described) == COLUMNS
