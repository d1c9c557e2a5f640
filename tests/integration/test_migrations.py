"""Versioned migrations against the embedded ClickHouse engine."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from eventpipe.clickhouse import clickhouse_client
from eventpipe.events_table import COLUMNS, TABLE
from eventpipe.settings import Settings, SettingsError
from eventpipe_cli.cli import main
from stream_processors.migrations import apply_migrations, migration_steps


def test_migrations_apply_once_and_create_the_events_contract(tmp_path: Path) -> None:
    # Closed at the end: a process may hold one embedded engine path at a time.
    with clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")) as client:
        first = apply_migrations(client)
        second = apply_migrations(client)
        recorded = client.query("SELECT version FROM default.schema_migrations ORDER BY version")
        described = client.query(
            "SELECT name FROM system.columns WHERE database = 'cvat' AND table = {table:String}"
            " ORDER BY position",
            parameters={"table": TABLE},
        ).result_rows

    assert first == [version for version, _ in migration_steps()]
    assert first[0] == "0001_create_events"
    assert second == []
    assert [row[0] for row in recorded.result_rows] == first
    assert tuple(row[0] for row in described) == COLUMNS


# Made by the code before the events moved to the ``cvat`` database (migration 0001 only): its
# worker's sink inserted two requests' rows (client and working-time events) and then a
# redelivered copy of the first request's rows, as Kafka can cause.
DATA_DIR_0001 = Path(__file__).parents[1] / "fixtures" / "data-dir-0001.tar.gz"


def unpacked_data_dir(target: Path) -> Path:
    with tarfile.open(DATA_DIR_0001) as archive:
        archive.extractall(target, filter="data")
    return target


def test_migrate_moves_an_existing_installations_events_into_cvat_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = unpacked_data_dir(tmp_path / "data")

    assert main(["migrate", "--data-dir", str(data_dir)]) == 0
    assert (
        "0002_create_cvat_events, 0003_add_access_token_id, 0004_move_events,"
        " 0005_drop_old_events, 0006_cvat_table"
    ) in capsys.readouterr().out

    with clickhouse_client(Settings(data_dir=data_dir)) as client:
        moved = client.query(
            "SELECT scope, job_id, duration, payload, user_name, org_slug, access_token_id,"
            " toUnixTimestamp64Milli(timestamp) FROM cvat.events ORDER BY job_id, event_seq"
        ).result_rows
        old_tables = client.query(
            "SELECT database, name FROM system.tables WHERE (database = 'default'"
            " AND name = 'events') OR name = 'events_eventpipe_v1'"
        ).result_rows
        assert apply_migrations(client) == []

    t0_ms = 1772442000250  # 2026-03-02T09:00:00.250Z
    assert [row[:4] for row in moved] == [
        ("click:element", 31, 0, '{"n":0}'),
        ("click:element", 31, 0, '{"n":4}'),
        ("click:element", 31, 0, '{"n":10}'),
        ("send:working_time", 31, 10000, '{"working_time":10000}'),
        ("click:element", 32, 0, '{"n":0}'),
        ("click:element", 32, 0, '{"n":30}'),
        ("send:working_time", 32, 30000, '{"working_time":30000}'),
    ]
    assert {row[4:7] for row in moved} == {("bob", "acme", None)}
    assert [row[7] for row in moved][:3] == [t0_ms, t0_ms + 4000, t0_ms + 10000]
    assert old_tables == []


def test_the_events_database_must_not_be_the_dsns_own(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="EVENTPIPE_CLICKHOUSE_DATABASE='default'"):
        clickhouse_client(
            Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}", clickhouse_database="default")
        )
