"""Users, organizations, memberships and API tokens, kept in SQLite under ``data_dir`` or in
PostgreSQL (:mod:`eventpipe.identity_db`).

The CLI writes here (``eventpipe users add`` ...) and every gateway process reads. SQLite runs in
WAL mode (readers never wait for a writer) and each call opens its own short-lived connection;
PostgreSQL calls take a connection from a small pool. Either way the store is safe to use from
worker threads.

Secrets never leave this module in clear: passwords are stored as salted scrypt hashes (with their
parameters, so they can be raised later without breaking old hashes) and tokens as SHA-256 digests.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from eventpipe.errors import CommandError
from eventpipe.identity_db import (
    Database,
    PostgresDatabase,
    SqliteDatabase,
    is_postgres_dsn,
)
from eventpipe.settings import Settings, SettingsError

# CVAT's privileges, highest first (its IAM_ROLES). A user without one has none (None), as a CVAT
# user in none of these groups. The store grants admin or user; "worker" and none come from CVAT
# or from JWT claims.
Privilege = Literal["admin", "user", "worker"]
PRIVILEGES: Final[tuple[Privilege, ...]] = ("admin", "user", "worker")
OrgRole = Literal["worker", "supervisor", "maintainer", "owner"]
ORG_ROLES: Final[tuple[OrgRole, ...]] = ("worker", "supervisor", "maintainer", "owner")

# Django's username rules (CVAT users are Django users) and CVAT's organization slug field.
_USERNAME = re.compile(r"[\w.@+-]{1,150}", re.ASCII)
SLUG_PATTERN: Final = r"[A-Za-z0-9_-]{1,16}"
_SLUG = re.compile(SLUG_PATTERN)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

# Every API token begins with this; tokens created before it existed stay valid (only digests
# are stored, whatever the token looks like).
TOKEN_PREFIX: Final = "ep_"

# scrypt cost: about 0.1 s and 16 MiB per verification, which is why the gateway caches results.
_SCRYPT_N: Final = 2**14
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_SCRYPT_LEN: Final = 32


class UnknownUserError(CommandError):
    def __init__(self, username: str) -> None:
        super().__init__(
            f"there is no user {username!r}; create it with `eventpipe users add {username} "
            "--password ...`"
        )


class UnknownOrgError(CommandError):
    def __init__(self, slug: str) -> None:
        super().__init__(
            f"there is no organization {slug!r}; create it with `eventpipe orgs add {slug}`"
        )


class UnknownTokenError(CommandError):
    def __init__(self) -> None:
        super().__init__(
            "no such token; `eventpipe tokens list USERNAME` shows the ids of a user's tokens"
        )


class DuplicateError(CommandError):
    """A user or organization with that name already exists."""


class InvalidIdentityValueError(CommandError):
    """A username, slug, email, password or role that the store refuses."""


def privilege_of(groups: Iterable[str]) -> Privilege | None:
    """CVAT's privilege of a user in ``groups``: the highest of them, None without any
    (``cvat/apps/iam/middleware.py``; ``is_superuser`` plays no part)."""
    held = set(groups)
    return next((privilege for privilege in PRIVILEGES if privilege in held), None)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """The CVAT personal access token a caller authenticated with (``Authorization: Bearer``)."""

    id: int
    read_only: bool


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    email: str | None
    # None: in none of CVAT's groups, so no privilege at all.
    privilege: Privilege | None
    # None: memberships live in this store. A JWT caller brings its own from the token's claims.
    memberships: tuple[Membership, ...] | None = None
    # The CVAT access token the caller used, which may do less than its owner.
    access_token: AccessToken | None = None

    @property
    def is_admin(self) -> bool:
        return self.privilege == "admin"


@dataclass(frozen=True, slots=True)
class Org:
    id: int
    slug: str


@dataclass(frozen=True, slots=True)
class Membership:
    org: Org
    role: OrgRole


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown about an API token: never the token."""

    id: int
    username: str
    created_at: str


class IdentityStore:
    """``IdentityStore(data_dir)`` is the SQLite file there; :meth:`from_settings` picks the
    backend ``settings.identity_dsn`` names."""

    def __init__(self, location: Path | Database) -> None:
        self._db = SqliteDatabase(location) if isinstance(location, Path) else location

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityStore:
        dsn = settings.identity_dsn.strip()
        if not dsn:
            return cls(settings.data_dir)
        if not is_postgres_dsn(dsn):
            raise SettingsError(
                "EVENTPIPE_IDENTITY_DSN must be empty (SQLite under the data directory) or a "
                "postgresql:// URL"
            )
        return cls(
            PostgresDatabase(
                dsn,
                pool_size=settings.identity_pool_size,
                timeout_seconds=settings.identity_timeout_seconds,
            )
        )

    @property
    def path(self) -> Path:
        """The SQLite file (only for the embedded backend)."""
        assert isinstance(self._db, SqliteDatabase)
        return self._db.path

    def migrate(self) -> int:
        """Create or upgrade the schema (``eventpipe migrate``); the number of steps applied."""
        return self._db.migrate()

    def check_schema(self) -> None:
        """A :class:`CommandError` naming ``eventpipe migrate`` when the schema is outdated."""
        self._db.check_schema()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> IdentityStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- administration (the CLI) ----------------------------------------------------------------

    def add_user(
        self, username: str, password: str, *, email: str | None = None, admin: bool = False
    ) -> User:
        _check_username(username)
        if not password:
            raise InvalidIdentityValueError("the password must not be empty")
        if email is not None and not _EMAIL.fullmatch(email):
            raise InvalidIdentityValueError(f"{email!r} is not an email address")
        privilege: Privilege = "admin" if admin else "user"
        try:
            with self._db.transaction() as db:
                row = db.execute(
                    "INSERT INTO users (username, email, privilege, password_hash)"
                    " VALUES (?, ?, ?, ?) RETURNING id",
                    (username, email, privilege, hash_password(password)),
                ).fetchone()
        except self._db.integrity_errors:
            raise DuplicateError(
                f"user {username!r} already exists; pick another username"
            ) from None
        return User(row[0], username, email, privilege)

    def add_org(self, slug: str) -> Org:
        _check_slug(slug)
        try:
            with self._db.transaction() as db:
                row = db.execute(
                    "INSERT INTO orgs (slug) VALUES (?) RETURNING id", (slug,)
                ).fetchone()
        except self._db.integrity_errors:
            raise DuplicateError(
                f"organization {slug!r} already exists; pick another slug"
            ) from None
        return Org(row[0], slug)

    def add_member(self, slug: str, username: str, role: str) -> None:
        """Make ``username`` a member of ``slug`` with ``role``, replacing any previous role."""
        if role not in ORG_ROLES:
            raise InvalidIdentityValueError(
                f"{role!r} is not an organization role; use one of {', '.join(ORG_ROLES)}"
            )
        org = self.org_by_slug(slug)
        if org is None:
            raise UnknownOrgError(slug)
        user = self._require_user(username)
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO memberships (org_id, user_id, role) VALUES (?, ?, ?)"
                " ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
                (org.id, user.id, role),
            )

    def create_token(self, username: str) -> str:
        """A new API token for ``username``; only its digest is stored, so show it once."""
        user = self._require_user(username)
        # The prefix keeps a token from starting with "-", which command lines (``eventpipe
        # tokens revoke``, curl) would read as an option, and lets secret scanners recognise it.
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO tokens (digest, user_id) VALUES (?, ?)",
                (_token_digest(token), user.id),
            )
        return token

    def list_tokens(self, username: str) -> list[TokenInfo]:
        """The user's tokens, oldest first; the tokens themselves are not stored, only digests."""
        user = self._require_user(username)
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT id, created_at FROM tokens WHERE user_id = ? ORDER BY id", (user.id,)
            ).fetchall()
        return [TokenInfo(token_id, username, created_at) for token_id, created_at in rows]

    def revoke_token(self, token_or_id: str) -> TokenInfo:
        """Delete a token named by its id (from :meth:`list_tokens`) or by the token itself.

        Gateways stop accepting it within ``token_cache_seconds``.
        """
        if token_or_id.isdigit():
            where, key = "t.id = ?", token_or_id
        else:
            where, key = "t.digest = ?", _token_digest(token_or_id)
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT t.id, u.username, t.created_at FROM tokens t"
                f" JOIN users u ON u.id = t.user_id WHERE {where}",
                (key,),
            ).fetchone()
            if row is None:
                raise UnknownTokenError()
            db.execute("DELETE FROM tokens WHERE id = ?", (row[0],))
        return TokenInfo(*row)

    # --- lookups (the gateway) -------------------------------------------------------------------

    def verify_password(self, username: str, password: str) -> User | None:
        """The user if the password is right, else None (the same slow work for unknown users)."""
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT id, username, email, privilege, password_hash FROM users"
                " WHERE username = ?",
                (username,),
            ).fetchone()
        if row is None:
            # Hash anyway so that response times do not tell which usernames exist.
            check_password(password, _dummy_hash())
            return None
        if not check_password(password, row[4]):
            return None
        return User(*row[:4])

    def user_by_token(self, token: str) -> User | None:
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT u.id, u.username, u.email, u.privilege FROM tokens t"
                " JOIN users u ON u.id = t.user_id WHERE t.digest = ?",
                (_token_digest(token),),
            ).fetchone()
        return None if row is None else User(*row)

    def user_by_name(self, username: str) -> User | None:
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT id, username, email, privilege FROM users WHERE username = ?",
                (username,),
            ).fetchone()
        return None if row is None else User(*row)

    def org_by_slug(self, slug: str) -> Org | None:
        with self._db.transaction() as db:
            row = db.execute("SELECT id, slug FROM orgs WHERE slug = ?", (slug,)).fetchone()
        return None if row is None else Org(row[0], row[1])

    def org_by_id(self, org_id: int) -> Org | None:
        with self._db.transaction() as db:
            row = db.execute("SELECT id, slug FROM orgs WHERE id = ?", (org_id,)).fetchone()
        return None if row is None else Org(row[0], row[1])

    def role_of(self, org_id: int, user_id: int) -> OrgRole | None:
        """The user's role in the organization, None when not a member."""
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT role FROM memberships WHERE org_id = ? AND user_id = ?", (org_id, user_id)
            ).fetchone()
        return None if row is None else row[0]

    # --- internals -------------------------------------------------------------------------------

    def _require_user(self, username: str) -> User:
        user = self.user_by_name(username)
        if user is None:
            raise UnknownUserError(username)
        return user


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with base64 salt and hash."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        ("scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest))
    )


def check_password(password: str, encoded: str) -> bool:
    scheme, n, r, p, salt, expected = encoded.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown password hash scheme {scheme!r}")
    digest = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(digest, base64.b64decode(expected))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=_SCRYPT_LEN, maxmem=2 * 128 * n * r
    )


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _check_username(username: str) -> None:
    if not _USERNAME.fullmatch(username):
        raise InvalidIdentityValueError(
            f"{username!r} is not a valid username: use 1-150 letters, digits and @ . + - _"
        )


def _check_slug(slug: str) -> None:
    if not _SLUG.fullmatch(slug):
        raise InvalidIdentityValueError(
            f"{slug!r} is not a valid organization slug: use 1-16 letters, digits, - and _"
        )
