"""Where the identity store keeps its tables: SQLite under the data directory (the embedded
default) or PostgreSQL (``settings.identity_dsn``), which any number of gateway replicas share.

Both speak the same SQL to :mod:`eventpipe.identity`: queries are written with ``?`` placeholders
and always bound, never formatted; the PostgreSQL side turns them into psycopg's ``%s``. Each
backend owns its schema: SQLite creates and upgrades it when opened (one file, one machine),
PostgreSQL only in :meth:`PostgresDatabase.migrate` (``eventpipe migrate``), serialized by an
advisory lock, so replicas starting together never race on DDL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import psycopg
import psycopg_pool

from eventpipe.errors import CommandError

DB_FILE_NAME: Final = "identity.sqlite3"
POSTGRES_SCHEMES: Final = ("postgresql", "postgres")

_SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    privilege TEXT NOT NULL CHECK (privilege IN ('admin', 'user')),
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orgs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS memberships (
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    role TEXT NOT NULL CHECK (role IN ('worker', 'supervisor', 'maintainer', 'owner')),
    PRIMARY KEY (org_id, user_id)
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""

# Tokens once had no id of their own; such a table is rebuilt with one, keeping every token.
_SQLITE_ADD_TOKEN_IDS: Final = """
ALTER TABLE tokens RENAME TO tokens_without_ids;
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO tokens (digest, user_id, created_at)
    SELECT digest, user_id, created_at FROM tokens_without_ids ORDER BY created_at;
DROP TABLE tokens_without_ids;
"""

# PostgreSQL schema versions, applied in order and recorded in identity_schema. Append only.
_POSTGRES_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE users (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        email TEXT,
        privilege TEXT NOT NULL CHECK (privilege IN ('admin', 'user')),
        password_hash TEXT NOT NULL
    );
    CREATE TABLE orgs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE
    );
    CREATE TABLE memberships (
        org_id BIGINT NOT NULL REFERENCES orgs(id),
        user_id BIGINT NOT NULL REFERENCES users(id),
        role TEXT NOT NULL CHECK (role IN ('worker', 'supervisor', 'maintainer', 'owner')),
        PRIMARY KEY (org_id, user_id)
    );
    CREATE TABLE tokens (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        user_id BIGINT NOT NULL REFERENCES users(id),
        created_at TEXT NOT NULL
            DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    );
    CREATE INDEX tokens_user_id ON tokens (user_id);
    """,
)
# Any constant both `eventpipe migrate` runs agree on: it names the lock, not a row.
_MIGRATION_LOCK: Final = 0x6576656E74706970


class IdentityStoreUnavailableError(CommandError):
    """The store cannot be reached now; the gateway answers 503, the CLI prints this."""


class OutdatedIdentitySchemaError(CommandError):
    def __init__(self, found: int) -> None:
        super().__init__(
            f"the identity schema in PostgreSQL is at version {found}, this eventpipe needs "
            f"{len(_POSTGRES_MIGRATIONS)}: run `eventpipe migrate`"
        )


class Rows(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows: ...


class Database(Protocol):
    """One backend of the identity store."""

    # What a violated UNIQUE constraint raises.
    integrity_errors: tuple[type[Exception], ...]

    def transaction(self) -> AbstractContextManager[Connection]:
        """A connection in one transaction: committed on success, rolled back on error."""
        ...

    def migrate(self) -> int:
        """Create or upgrade the schema; the number of schema steps applied."""
        ...

    def check_schema(self) -> None:
        """Raise a :class:`CommandError` when the schema is older than this code."""
        ...

    def close(self) -> None: ...


class SqliteDatabase:
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILE_NAME
        # Every process opening the file brings it up to date; `eventpipe migrate` reports this.
        self._applied_on_open = self._upgrade()

    def migrate(self) -> int:
        steps, self._applied_on_open = self._applied_on_open + self._upgrade(), 0
        return steps

    def _upgrade(self) -> int:
        with self._connect() as db:
            # WAL is a property of the database file, so setting it once serves every process.
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SQLITE_SCHEMA)
            token_columns = {row[1] for row in db.execute("PRAGMA table_info(tokens)")}
            if "id" not in token_columns:
                db.executescript(_SQLITE_ADD_TOKEN_IDS)
                return 1
        return 0

    def check_schema(self) -> None:
        """Opening the file already brought its schema up to date."""

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._connect() as db:
            yield db

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10.0)
        try:
            db.execute("PRAGMA foreign_keys = ON")
            with db:  # one transaction: commit on success, roll back on error
                yield db
        finally:
            db.close()

    def close(self) -> None:
        """Each call opened and closed its own connection."""


class _PostgresConnection:
    """A psycopg connection that takes the store's ``?`` placeholders."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows:
        # Without parameters psycopg sends the text as it is, which lets a migration hold several
        # statements.
        return self._connection.execute(sql.replace("?", "%s"), params or None)


class PostgresDatabase:
    integrity_errors: tuple[type[Exception], ...] = (psycopg.errors.UniqueViolation,)

    def __init__(self, dsn: str, *, pool_size: int = 4, timeout_seconds: float = 5.0) -> None:
        self.where = describe_dsn(dsn)
        self._timeout = timeout_seconds
        # Connections are opened in the background and reopened after an outage; a caller waits
        # at most timeout_seconds for one and then gets IdentityStoreUnavailableError.
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(pool_size, 1),
            timeout=timeout_seconds,
            kwargs={"connect_timeout": max(int(timeout_seconds), 1)},
            open=True,
            name="eventpipe-identity",
        )

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        try:
            with self._pool.connection() as connection, connection.transaction():
                yield _PostgresConnection(connection)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise IdentityStoreUnavailableError(
                f"the identity store at {self.where} cannot be reached: {_first_line(exc)}"
            ) from None

    def migrate(self) -> int:
        with self.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS identity_schema"
                " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = self._version(db)
            for version, step in enumerate(_POSTGRES_MIGRATIONS[current:], start=current + 1):
                db.execute(step)
                db.execute("INSERT INTO identity_schema (version) VALUES (?)", (version,))
        return len(_POSTGRES_MIGRATIONS) - current

    def check_schema(self) -> None:
        with self.transaction() as db:
            exists = db.execute("SELECT to_regclass('identity_schema')").fetchone()[0]
            found = self._version(db) if exists else 0
        if found < len(_POSTGRES_MIGRATIONS):
            raise OutdatedIdentitySchemaError(found)

    @staticmethod
    def _version(db: Connection) -> int:
        return int(
            db.execute("SELECT coalesce(max(version), 0) FROM identity_schema").fetchone()[0]
        )

    def close(self) -> None:
        self._pool.close()


def is_postgres_dsn(dsn: str) -> bool:
    return urlsplit(dsn).scheme in POSTGRES_SCHEMES


def describe_dsn(dsn: str) -> str:
    """Host, port and database of a DSN: what may appear in a message (never the password)."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
