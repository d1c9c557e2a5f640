"""The identity store in a real PostgreSQL server (EVENTPIPE_IDENTITY_DSN): the schema comes
from `eventpipe migrate`, the CLI and the gateway share it, and an unreachable server is a clear
error."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from eventpipe.identity import DuplicateError, IdentityStore, UnknownTokenError
from eventpipe.identity_db import IdentityStoreUnavailableError, OutdatedIdentitySchemaError
from eventpipe.settings import Settings
from eventpipe_cli.cli import main
from eventpipe_cli.embedded_broker import free_port
from ingest_gateway.app import create_app
from tests.integration.gateway_support import running_gateway
from tests.server_processes import PostgresServer

EMPTY_BATCH = {"events": [], "timestamp": "2026-01-01T00:00:00Z"}

ALICE_PW, ROOT_PW = "alice-correct-horse", "root-battery-staple"


def _cli(monkeypatch: pytest.MonkeyPatch, dsn: str, tmp_path: Path, *argv: str) -> int:
    monkeypatch.setenv("EVENTPIPE_IDENTITY_DSN", dsn)
    return main([*argv, "--data-dir", str(tmp_path)])


@pytest.fixture
def migrated(postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    assert _cli(monkeypatch, postgres_dsn, tmp_path, "migrate", "--only", "identity") == 0
    return postgres_dsn


def test_the_cli_refuses_a_database_without_schema_and_names_migrate(
    postgres_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli(monkeypatch, postgres_dsn, tmp_path, "users", "add", "a", "--password", "p") == 1
    error = capsys.readouterr().err
    assert "eventpipe migrate" in error and error.count("\n") == 1


def test_migrate_creates_the_schema_once(
    postgres_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli(monkeypatch, postgres_dsn, tmp_path, "migrate", "--only", "identity") == 0
    assert "applied 1 schema step" in capsys.readouterr().out
    assert _cli(monkeypatch, postgres_dsn, tmp_path, "migrate", "--only", "identity") == 0
    assert "applied 0 schema step" in capsys.readouterr().out
    with psycopg.connect(postgres_dsn) as db:
        tables = {row[0] for row in db.execute("SELECT tablename FROM pg_tables")}
    assert {"users", "orgs", "memberships", "tokens", "identity_schema"} <= tables
    # Nothing was written under the data directory: the store lives in PostgreSQL.
    assert not (tmp_path / "identity.sqlite3").exists()


def test_users_orgs_and_tokens_made_by_the_cli_are_in_postgresql(
    migrated: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def cli(*argv: str) -> int:
        return _cli(monkeypatch, migrated, tmp_path, *argv)

    # Passwords long enough that no salted hash holds one by chance.
    assert cli("users", "add", "alice", "--password", ALICE_PW, "--email", "a@example.com") == 0
    assert cli("users", "add", "root", "--password", ROOT_PW, "--admin") == 0
    assert cli("orgs", "add", "acme") == 0
    assert cli("orgs", "add-member", "acme", "alice", "--role", "supervisor") == 0
    capsys.readouterr()
    assert cli("tokens", "create", "alice") == 0
    token = capsys.readouterr().out.strip()

    with IdentityStore.from_settings(Settings(identity_dsn=migrated)) as store:
        alice = store.user_by_token(token)
        assert alice is not None and alice.username == "alice"
        assert alice.email == "a@example.com" and alice.privilege == "user"
        assert store.verify_password("alice", ALICE_PW) == alice
        assert store.verify_password("alice", "wrong") is None
        root = store.verify_password("root", ROOT_PW)
        assert root is not None and root.is_admin
        acme = store.org_by_slug("acme")
        assert acme is not None and store.org_by_id(acme.id) == acme
        assert store.role_of(acme.id, alice.id) == "supervisor"
        assert store.role_of(acme.id, root.id) is None
        with pytest.raises(DuplicateError, match="already exists"):
            store.add_org("acme")
        [listed] = store.list_tokens("alice")

    with psycopg.connect(migrated) as db:
        stored = db.execute("SELECT digest FROM tokens").fetchall()
        hashes = db.execute("SELECT password_hash FROM users").fetchall()
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)]
    assert all(
        row[0].startswith("scrypt$") and ALICE_PW not in row[0] and ROOT_PW not in row[0]
        for row in hashes
    )

    assert cli("tokens", "revoke", str(listed.id)) == 0
    with IdentityStore.from_settings(Settings(identity_dsn=migrated)) as store:
        assert store.user_by_token(token) is None
        with pytest.raises(UnknownTokenError):
            store.revoke_token(token)
    assert cli("users", "add", "alice", "--password", "pw") == 1
    assert "already exists" in capsys.readouterr().err


def test_an_unreachable_server_is_a_bounded_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = f"postgresql://eventpipe:hunter2@127.0.0.1:{free_port()}/identity"
    settings = Settings(identity_dsn=dsn, identity_timeout_seconds=1.0)
    started = time.monotonic()
    with (
        IdentityStore.from_settings(settings) as store,
        pytest.raises(IdentityStoreUnavailableError, match="cannot be reached") as raised,
    ):
        store.user_by_token("some-token")
    assert time.monotonic() - started < 5
    assert "hunter2" not in str(raised.value)

    monkeypatch.setenv("EVENTPIPE_IDENTITY_TIMEOUT_SECONDS", "1")
    assert _cli(monkeypatch, dsn, tmp_path, "tokens", "list", "alice") == 1
    error = capsys.readouterr().err
    assert "cannot be reached" in error and "hunter2" not in error


def test_a_dsn_that_is_not_postgresql_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(monkeypatch, "mysql://x@y/z", tmp_path, "tokens", "list", "alice") == 2
    assert "EVENTPIPE_IDENTITY_DSN" in capsys.readouterr().err


def test_the_gateway_reads_postgresql_and_answers_503_when_it_goes_away(
    migrated: str, settings: Settings, postgres: PostgresServer
) -> None:
    settings = settings.with_overrides(identity_dsn=migrated, identity_timeout_seconds=1.0)
    with IdentityStore.from_settings(settings) as store:
        store.add_user("alice", "pw")
        token = store.create_token("alice")
    headers = {"Authorization": f"Token {token}"}
    with running_gateway(settings) as gateway:
        answer = httpx.post(f"{gateway.url}/api/events", json=EMPTY_BATCH, headers=headers)
        assert answer.status_code == 201
        database = conninfo_to_dict(migrated)["dbname"]
        with psycopg.connect(postgres.dsn(), autocommit=True) as db:
            db.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        # Another credential, so the answer cannot come from the gateway's cache.
        other = {"Authorization": "Token not-cached-yet"}
        answer = httpx.post(f"{gateway.url}/api/events", json=EMPTY_BATCH, headers=other)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"].isdigit()
        # The reason, with the store's host and database, is for the log, not for the caller.
        assert "cannot be reached" in answer.json()["error"]
        assert database not in answer.text and "127.0.0.1" not in answer.text


def test_concurrent_migrations_wait_for_each_other(postgres_dsn: str) -> None:
    """Gateway pods start together, each running `eventpipe migrate` in its init container."""
    settings = Settings(identity_dsn=postgres_dsn)
    stores = [IdentityStore.from_settings(settings) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            steps = list(pool.map(lambda store: store.migrate(), stores))
        assert sorted(steps) == [0, 0, 0, 1]
        stores[0].check_schema()
    finally:
        for store in stores:
            store.close()


async def test_a_gateway_that_cannot_start_leaves_no_connection_open(postgres_dsn: str) -> None:
    """The start stops at the missing schema, after the identity pool is already open."""
    app = create_app(Settings(identity_dsn=postgres_dsn))
    with pytest.raises(OutdatedIdentitySchemaError):
        async with app.router.lifespan_context(app):
            pass
    database = psycopg.conninfo.conninfo_to_dict(postgres_dsn)["dbname"]
    with psycopg.connect(postgres_dsn) as connection:
        others = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    assert others == (0,)
