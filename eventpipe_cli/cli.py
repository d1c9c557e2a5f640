"""The ``eventpipe`` command: one entry point for every process and the admin tasks.

Each subcommand imports its implementation lazily, so ``eventpipe users add`` does not pay for
loading Faust or the ClickHouse engine.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from eventpipe.errors import CommandError
from eventpipe.identity import ORG_ROLES, IdentityStore
from eventpipe.settings import Settings, SettingsError


def _settings(
    args: argparse.Namespace, keeps_files: Callable[[Settings], bool] = lambda _: True
) -> Settings:
    """The settings of a command that keeps files in the data directory when ``keeps_files``
    says so, which it then must be able to write: a gateway on PostgreSQL and S3 may run with a
    read-only file system."""
    settings = Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        http_host=getattr(args, "host", None),
        http_port=getattr(args, "port", None),
        s3_endpoint=getattr(args, "s3_endpoint", None),
        intake_port=getattr(args, "intake_port", None),
    )
    if keeps_files(settings):
        _require_writable(settings.data_dir)
    return settings


def _local_identity(settings: Settings) -> bool:
    return not settings.identity_dsn


def _require_writable(data_dir: Path) -> None:
    """Create the data directory and write in it once, so that a path under a regular file, on a
    read-only or pseudo file system, or without permission is one clear error up front.

    A real write, not os.access: root passes every permission check yet cannot write /proc.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as exc:
        raise CommandError(
            f"cannot write in the data directory {str(data_dir)!r}: {exc.strerror or exc}; "
            "pick a writable one with --data-dir or EVENTPIPE_DATA_DIR"
        ) from None


def _port(raw: str) -> int:
    """A TCP port for --port: 1-65535."""
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a TCP port (1-65535)")
    return int(raw)


# --- identity administration ---------------------------------------------------------------------


def _identity(args: argparse.Namespace) -> IdentityStore:
    """The store ``EVENTPIPE_IDENTITY_DSN`` names (SQLite under the data directory by default)."""
    store = IdentityStore.from_settings(_settings(args, _local_identity))
    try:
        store.check_schema()
    except BaseException:
        store.close()
        raise
    return store


IdentityAction = Callable[[IdentityStore, argparse.Namespace], str]


def _on_identity_store(action: IdentityAction) -> Callable[[argparse.Namespace], int]:
    """A command that runs ``action`` on the identity store, closes it, then prints the report
    ``action`` returned (nothing when it is empty)."""

    @functools.wraps(action)
    def command(args: argparse.Namespace) -> int:
        with _identity(args) as store:
            report = action(store, args)
        if report:
            print(report)
        return 0

    return command


@_on_identity_store
def _users_add(store: IdentityStore, args: argparse.Namespace) -> str:
    user = store.add_user(args.username, args.password, email=args.email, admin=args.admin)
    return f"user {user.username!r} created with id {user.id}"


@_on_identity_store
def _orgs_add(store: IdentityStore, args: argparse.Namespace) -> str:
    org = store.add_org(args.slug)
    return f"organization {org.slug!r} created with id {org.id}"


@_on_identity_store
def _orgs_add_member(store: IdentityStore, args: argparse.Namespace) -> str:
    store.add_member(args.slug, args.username, args.role)
    return f"{args.username!r} is now {args.role} of {args.slug!r}"


@_on_identity_store
def _tokens_create(store: IdentityStore, args: argparse.Namespace) -> str:
    return store.create_token(args.username)


@_on_identity_store
def _tokens_list(store: IdentityStore, args: argparse.Namespace) -> str:
    tokens = store.list_tokens(args.username)
    if not tokens:
        print(f"{args.username!r} has no API tokens", file=sys.stderr)
    return "\n".join(f"{token.id}\t{token.created_at}" for token in tokens)


@_on_identity_store
def _tokens_revoke(store: IdentityStore, args: argparse.Namespace) -> str:
    token = store.revoke_token(args.token_or_id)
    return f"revoked token {token.id} of {token.username!r} (created {token.created_at})"


# --- processes -----------------------------------------------------------------------------------


def _dev(args: argparse.Namespace) -> int:
    from eventpipe_cli.dev_stack import run_dev_stack

    return run_dev_stack(_settings(args))


def _gateway(args: argparse.Namespace) -> int:
    from ingest_gateway.server import serve

    # The gateway never opens ClickHouse; exports without S3 are files under the data directory.
    settings = _settings(args, lambda s: _local_identity(s) or not s.s3_endpoint)
    return serve(settings, workers=args.workers)


def _worker(args: argparse.Namespace) -> int:
    from eventpipe.logs import configure_logging
    from eventpipe_cli.worker import run_worker

    # Always: Faust keeps its tables under data_dir/faust.
    settings = _settings(args)
    # From the start: Faust sets up the same logging only once its worker runs.
    configure_logging(settings)
    return run_worker(settings, role=args.role)


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings(
        args,
        lambda s: (
            (args.only != "clickhouse" and _local_identity(s))
            or (args.only != "identity" and s.embedded_clickhouse)
        ),
    )
    if args.only in (None, "identity"):
        with IdentityStore.from_settings(settings) as store:
            steps = store.migrate()
        print(f"identity store: applied {steps} schema step(s)")
    if args.only in (None, "clickhouse"):
        from clickhouse_connect.driver.exceptions import ClickHouseError

        from eventpipe.clickhouse import clickhouse_client
        from stream_processors.migrations import apply_migrations

        try:
            with contextlib.closing(clickhouse_client(settings)) as client:
                applied = apply_migrations(client)
        except ClickHouseError as exc:
            # The engine's messages run on with a stack trace: its first line says what failed.
            reason = str(exc).strip().splitlines()[0][:300]
            raise CommandError(f"cannot apply the migrations: {reason}") from None
        print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    # The benchmarks are a distribution of their own (benchmarks/), which a production install
    # does not carry.
    try:
        from benchmarks import run_bench
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks":
            raise
        raise CommandError(
            "the benchmarks are not installed: pip install -e ./benchmarks"
            " from a checkout of eventpipe (make install does)"
        ) from None
    return run_bench(args)


# --- parser --------------------------------------------------------------------------------------


def _with_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="data directory (default: $EVENTPIPE_DATA_DIR or ./data)"
    )


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help_text: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    _with_data_dir(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventpipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = _command(sub, "dev", _dev, "run broker, worker and gateway locally in the foreground")
    dev.add_argument("--host", help="gateway listen address (default 127.0.0.1)")
    dev.add_argument("--port", type=_port, help="gateway port (default 8080)")
    dev.add_argument("--s3-endpoint", help="store exports in this S3 endpoint, not on disk")
    dev.add_argument(
        "--intake-port", type=int, help="serve the intake for CVAT's server on this port (0: none)"
    )

    gateway = _command(sub, "gateway", _gateway, "serve the HTTP API")
    gateway.add_argument("--host")
    gateway.add_argument("--port", type=_port)
    gateway.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")

    worker = _command(sub, "worker", _worker, "consume Kafka: process events and/or run exports")
    worker.add_argument("--role", choices=("processor", "exporter", "all"), default="all")

    migrate = _command(
        sub, "migrate", _migrate, "create or upgrade the identity store and ClickHouse schemas"
    )
    migrate.add_argument(
        "--only",
        choices=("identity", "clickhouse"),
        help="migrate only this store (default: both)",
    )

    users = sub.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )
    add_user = _command(users, "add", _users_add, "create a user")
    add_user.add_argument("username")
    add_user.add_argument("--password", required=True)
    add_user.add_argument("--email")
    add_user.add_argument("--admin", action="store_true", help="grant the admin privilege")

    orgs = sub.add_parser("orgs", help="manage organizations").add_subparsers(
        dest="action", required=True
    )
    _command(orgs, "add", _orgs_add, "create an organization").add_argument("slug")
    member = _command(orgs, "add-member", _orgs_add_member, "add a user to an organization")
    member.add_argument("slug")
    member.add_argument("username")
    member.add_argument("--role", choices=ORG_ROLES, required=True)

    tokens = sub.add_parser("tokens", help="manage API tokens").add_subparsers(
        dest="action", required=True
    )
    create_token = _command(tokens, "create", _tokens_create, "create an API token and print it")
    create_token.add_argument("username")
    list_tokens = _command(
        tokens, "list", _tokens_list, "list a user's API tokens: id and creation time"
    )
    list_tokens.add_argument("username")
    revoke = _command(
        tokens, "revoke", _tokens_revoke, "revoke an API token, named by its id or by the token"
    )
    revoke.add_argument("token_or_id")

    bench = _command(
        sub,
        "bench",
        _bench,
        "measure throughput against raw baselines (development installs: make install)",
    )
    bench.add_argument(
        "stage",
        nargs="?",
        default="all",
        choices=("all", "ingest", "intake", "export", "noisy", "scale", "compare"),
        help="what to measure (default: every stage, with a JSON report and a chart), or compare:"
        " whether two reports of every stage agree on their ratios",
    )
    bench.add_argument(
        "--reports",
        nargs=2,
        type=Path,
        metavar=("FIRST", "SECOND"),
        help="compare: the two JSON reports",
    )
    bench.add_argument(
        "--tolerance",
        type=float,
        default=15.0,
        help="compare: how far apart, in percent of the smaller, two ratios may be (default 15)",
    )
    bench.add_argument(
        "--events", type=int, default=200_000, help="ingest, intake, scale: events to send"
    )
    bench.add_argument("--rows", type=int, default=1_000_000, help="export: rows to export")
    bench.add_argument("--concurrency", type=int, default=32, help="concurrent connections")
    bench.add_argument("--batch", type=int, default=100, help="events per request")
    bench.add_argument("--url", help="benchmark this running gateway instead of starting one")
    bench.add_argument("--token", help="with --url: an API token of a user on that gateway")
    bench.add_argument(
        "--gateway-processes",
        type=int,
        help="uvicorn processes of the benchmarked gateway (default: one per CPU)",
    )
    bench.add_argument(
        "--tenant-limit", type=float, default=5000, help="noisy: events/s each tenant may post"
    )
    bench.add_argument(
        "--seconds",
        type=float,
        default=40,
        help="noisy: seconds per phase (at the default limit, 40 s hold 1,000 quiet requests)",
    )
    bench.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="noisy: rounds of the three phases (default 5, at least 2)",
    )
    bench.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="all: runs of each measurement; the report gives their medians",
    )
    bench.add_argument(
        "--max-steal",
        type=float,
        default=5.0,
        help="all: repeat an ingest run (up to 3 tries) while the VM's host takes more than this"
        " percent of the CPU time during it (default 5)",
    )
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.add_argument(
        "--output",
        type=Path,
        default=Path("bench-report"),
        help="all: where to write the report (.json) and the chart (.png)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except SettingsError as exc:
        print(f"eventpipe: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"eventpipe: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        # The identity database exists but cannot be used (not a database, locked, read-only).
        print(f"eventpipe: the identity database cannot be used: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
