"""API tokens can be listed and revoked; a gateway stops accepting a revoked token quickly."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest

from eventpipe.identity import IdentityStore, UnknownTokenError
from eventpipe_cli.cli import main
from ingest_gateway.errors import ApiError
from ingest_gateway.identity.authentication import Authenticator
from tests.support.clock import ManualClock


@pytest.fixture
def store(tmp_path: Path) -> IdentityStore:
    store = IdentityStore(tmp_path)
    store.add_user("alice", "pw")
    store.add_user("bob", "pw")
    return store


def test_tokens_are_listed_without_the_token_and_revoked_by_id_or_token(
    store: IdentityStore,
) -> None:
    first, second = store.create_token("alice"), store.create_token("alice")
    store.create_token("bob")
    listed = store.list_tokens("alice")
    assert [t.username for t in listed] == ["alice", "alice"]
    assert listed[0].id < listed[1].id and listed[0].created_at.startswith("20")
    assert first not in repr(listed) and second not in repr(listed)

    assert store.revoke_token(str(listed[0].id)).id == listed[0].id
    assert store.user_by_token(first) is None
    assert store.revoke_token(second).id == listed[1].id
    assert store.user_by_token(second) is None
    assert store.list_tokens("alice") == []
    assert len(store.list_tokens("bob")) == 1
    for gone in (first, str(listed[0].id), "999"):
        with pytest.raises(UnknownTokenError, match="tokens list"):
            store.revoke_token(gone)


def test_a_token_table_without_ids_is_upgraded_keeping_its_tokens(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    store.add_user("alice", "pw")
    token = store.create_token("alice")
    db = sqlite3.connect(store.path)
    with db:
        db.executescript(
            """
            CREATE TABLE old_tokens (digest TEXT PRIMARY KEY, user_id INTEGER NOT NULL,
                                     created_at TEXT NOT NULL);
            INSERT INTO old_tokens SELECT digest, user_id, created_at FROM tokens;
            DROP TABLE tokens;
            ALTER TABLE old_tokens RENAME TO tokens;
            """
        )
    db.close()
    upgraded = IdentityStore(tmp_path)
    # `eventpipe migrate` reports the step that opening the store took.
    assert (upgraded.migrate(), upgraded.migrate()) == (1, 0)
    assert upgraded.user_by_token(token) is not None
    [info] = upgraded.list_tokens("alice")
    upgraded.revoke_token(str(info.id))
    assert upgraded.user_by_token(token) is None


def test_the_cli_lists_and_revokes_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert main(["users", "add", "alice", "--password", "pw", *data]) == 0
    assert main(["tokens", "create", "alice", *data]) == 0
    assert main(["tokens", "create", "alice", *data]) == 0
    first, second = capsys.readouterr().out.split()[-2:]

    assert main(["tokens", "list", "alice", *data]) == 0
    listing = capsys.readouterr().out
    assert first not in listing and second not in listing
    ids = [line.split("\t")[0] for line in listing.splitlines()]
    assert len(ids) == 2

    assert main(["tokens", "revoke", ids[0], *data]) == 0
    assert f"revoked token {ids[0]} of 'alice'" in capsys.readouterr().out
    assert main(["tokens", "revoke", second, *data]) == 0
    assert second not in capsys.readouterr().out
    assert main(["tokens", "revoke", second, *data]) == 1
    assert "no such token" in capsys.readouterr().err
    assert main(["tokens", "list", "alice", *data]) == 0
    assert "no API tokens" in capsys.readouterr().err


async def test_a_revoked_token_stops_working_within_the_token_cache_time(
    store: IdentityStore,
) -> None:
    token = store.create_token("alice")
    clock = ManualClock()
    auth = Authenticator(store, cache_seconds=60, token_cache_seconds=0.2, clock=clock)
    assert (await auth.authenticate(f"Token {token}")).username == "alice"
    store.revoke_token(token)
    # Still cached for a moment: the price of not reading the database on every request.
    clock.now += 0.19
    assert (await auth.authenticate(f"Token {token}")).username == "alice"
    clock.now += 0.02
    with pytest.raises(ApiError) as caught:
        await auth.authenticate(f"Bearer {token}")
    assert caught.value.status == 401
    with pytest.raises(ApiError):
        await auth.authenticate(f"Token {token}")


def test_a_token_never_reads_as_an_option_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One random token in 64 would begin with "-"; `tokens revoke <token>` must still take it.
    monkeypatch.setattr(secrets, "token_urlsafe", lambda nbytes: "-" + "x" * 42)
    data = ["--data-dir", str(tmp_path)]
    assert main(["users", "add", "alice", "--password", "pw", *data]) == 0
    assert main(["tokens", "create", "alice", *data]) == 0
    token = capsys.readouterr().out.split()[-1]
    assert not token.startswith("-")
    assert main(["tokens", "revoke", token, *data]) == 0
    assert "revoked token" in capsys.readouterr().out
