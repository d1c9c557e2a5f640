"""The identity store: users, organizations, memberships, tokens, and what it refuses."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from eventpipe.errors import CommandError
from eventpipe.identity import (
    DuplicateError,
    IdentityStore,
    InvalidIdentityValueError,
    UnknownOrgError,
    UnknownUserError,
)
from eventpipe_cli.cli import main


@pytest.fixture
def store(tmp_path: Path) -> IdentityStore:
    return IdentityStore(tmp_path / "nested" / "data")


def test_creates_its_directory_and_a_wal_database(tmp_path: Path) -> None:
    IdentityStore(tmp_path / "a" / "b")
    db = sqlite3.connect(tmp_path / "a" / "b" / "identity.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_second_store_on_the_same_directory_sees_the_same_data(tmp_path: Path) -> None:
    IdentityStore(tmp_path).add_user("alice", "pw")
    assert IdentityStore(tmp_path).user_by_name("alice") is not None


def test_password_verification(store: IdentityStore) -> None:
    alice = store.add_user("alice", "s3cret!", email="alice@example.com")
    assert alice.privilege == "user" and not alice.is_admin
    assert store.verify_password("alice", "s3cret!") == alice
    assert store.verify_password("alice", "wrong") is None
    assert store.verify_password("nobody", "s3cret!") is None


def test_passwords_are_stored_as_salted_scrypt_hashes(store: IdentityStore) -> None:
    store.add_user("alice", "same")
    store.add_user("bob", "same")
    rows = sqlite3.connect(store.path).execute("SELECT password_hash FROM users").fetchall()
    hashes = [row[0] for row in rows]
    assert all(h.startswith("scrypt$16384$8$1$") and "same" not in h for h in hashes)
    assert hashes[0] != hashes[1]


def test_admin_privilege(store: IdentityStore) -> None:
    root = store.add_user("root", "pw", admin=True)
    assert root.privilege == "admin" and root.is_admin


def test_tokens_resolve_to_their_user_and_only_a_digest_is_stored(store: IdentityStore) -> None:
    alice = store.add_user("alice", "pw")
    token = store.create_token("alice")
    assert len(token) >= 40
    assert store.user_by_token(token) == alice
    assert store.user_by_token(token + "x") is None
    stored = sqlite3.connect(store.path).execute("SELECT digest FROM tokens").fetchall()
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)]


def test_orgs_and_membership(store: IdentityStore) -> None:
    alice = store.add_user("alice", "pw")
    acme = store.add_org("acme")
    assert store.org_by_slug("acme") == acme
    assert store.org_by_id(acme.id) == acme
    assert store.org_by_slug("other") is None
    assert store.role_of(acme.id, alice.id) is None
    store.add_member("acme", "alice", "worker")
    assert store.role_of(acme.id, alice.id) == "worker"
    store.add_member("acme", "alice", "owner")
    assert store.role_of(acme.id, alice.id) == "owner"


@pytest.mark.parametrize(
    ("action", "error", "hint"),
    [
        (lambda s: s.add_user("alice", "again"), DuplicateError, "already exists"),
        (lambda s: s.add_org("acme"), DuplicateError, "already exists"),
        (lambda s: s.create_token("bob"), UnknownUserError, "eventpipe users add bob"),
        (lambda s: s.add_member("acme", "bob", "worker"), UnknownUserError, "users add"),
        (lambda s: s.add_member("nope", "alice", "worker"), UnknownOrgError, "orgs add nope"),
        (lambda s: s.add_member("acme", "alice", "boss"), InvalidIdentityValueError, "owner"),
        (lambda s: s.add_user("bad name", "pw"), InvalidIdentityValueError, "username"),
        (lambda s: s.add_user("carol", ""), InvalidIdentityValueError, "password"),
        (lambda s: s.add_user("carol", "pw", email="nope"), InvalidIdentityValueError, "email"),
        (lambda s: s.add_org("way-too-long-slug-x"), InvalidIdentityValueError, "slug"),
        (lambda s: s.add_org("no/slash"), InvalidIdentityValueError, "slug"),
    ],
)
def test_mistakes_raise_command_errors_that_say_what_to_do(
    store: IdentityStore,
    action: Callable[[IdentityStore], object],
    error: type[CommandError],
    hint: str,
) -> None:
    store.add_user("alice", "pw")
    store.add_org("acme")
    with pytest.raises(error, match=hint):
        action(store)


def test_the_cli_manages_identities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert main(["users", "add", "alice", "--password", "pw", *data]) == 0
    assert main(["orgs", "add", "acme", *data]) == 0
    assert main(["orgs", "add-member", "acme", "alice", "--role", "owner", *data]) == 0
    capsys.readouterr()
    assert main(["tokens", "create", "alice", *data]) == 0
    token = capsys.readouterr().out.strip()
    store = IdentityStore(tmp_path)
    alice = store.user_by_token(token)
    acme = store.org_by_slug("acme")
    assert alice is not None and acme is not None
    assert store.role_of(acme.id, alice.id) == "owner"
    assert main(["users", "add", "alice", "--password", "pw", *data]) == 1
    assert "already exists" in capsys.readouterr().err
