"""Bad input to the ``eventpipe`` command, run as a user runs it: each ends with a one-line error
that says what is wrong, and a non-zero exit status, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from eventpipe.settings import inherited_environment
from eventpipe_cli.embedded_broker import free_port
from tests.e2e.dev_stack_support import EVENTPIPE

# A port nothing listens on, for the checks that come after the API port's own.
SPARE_PORT = str(free_port())


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = subprocess.run(
        [str(EVENTPIPE), *args],
        capture_output=True,
        text=True,
        env=inherited_environment() | (env or {}),
        timeout=60,
    )
    return done.returncode, done.stderr


def assert_one_line_error(status: int, stderr: str, words: str) -> None:
    assert status != 0
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("eventpipe") and words in last, stderr


@pytest.fixture
def regular_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    return path


# Root passes every permission check, so unwritable directories are ones nobody can write: under
# a regular file, a regular file itself, and /proc.
@pytest.mark.parametrize("command", ["users", "orgs", "tokens", "migrate", "dev", "worker"])
@pytest.mark.parametrize("where", ["under a file", "a file", "/proc"])
def test_a_data_directory_that_cannot_be_written_is_named_in_one_line(
    regular_file: Path, command: str, where: str
) -> None:
    data_dir = {"under a file": regular_file / "data", "a file": regular_file, "/proc": "/proc"}
    args = {
        "users": ["users", "add", "alice", "--password", "pw"],
        "orgs": ["orgs", "add", "acme"],
        "tokens": ["tokens", "create", "alice"],
        "migrate": ["migrate"],
        "dev": ["dev", "--port", str(free_port())],
        "worker": ["worker"],
    }[command]
    status, stderr = run(*args, "--data-dir", str(data_dir[where]))
    assert_one_line_error(status, stderr, f"cannot write in the data directory '{data_dir[where]}'")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["users", "add", "a b", "--password", "pw"], "not a valid username"),
        (["users", "add", "x" * 151, "--password", "pw"], "not a valid username"),
        (["users", "add", "alice", "--password", ""], "password must not be empty"),
        (["users", "add", "alice", "--password", "pw", "--email", "nope"], "not an email"),
        (["orgs", "add", "bad slug!"], "not a valid organization slug"),
        (["orgs", "add", "x" * 17], "not a valid organization slug"),
        (["orgs", "add-member", "ghost", "alice", "--role", "owner"], "no organization 'ghost'"),
        (["orgs", "add-member", "acme", "alice", "--role", "king"], "invalid choice: 'king'"),
        (["tokens", "create", "nobody"], "no user 'nobody'"),
        (["tokens", "list", "nobody"], "no user 'nobody'"),
        (["tokens", "revoke", str(2**70)], "no such token"),
        (["dev", "--port", "99999"], "'99999' is not a TCP port"),
        (["dev", "--port", "0"], "'0' is not a TCP port"),
        (["dev", "--port", "http"], "'http' is not a TCP port"),
        (["dev", "--host", "999.0.0.1", "--port", "8080"], "cannot listen on 999.0.0.1:8080"),
        (["dev", "--intake-port", "99999"], "cannot listen on 127.0.0.1:99999"),
        (["dev", "--intake-port", "99999"], "pick another port with --intake-port"),
        (["dev", "--port", SPARE_PORT, "--intake-port", SPARE_PORT], "is the public API port"),
    ],
)
def test_bad_names_roles_and_ports_are_one_line_errors(
    tmp_path: Path, args: list[str], words: str
) -> None:
    status, stderr = run(*args, "--data-dir", str(tmp_path / "data"))
    assert_one_line_error(status, stderr, words)


def test_a_port_out_of_range_from_the_environment_is_one_line(tmp_path: Path) -> None:
    env = {"EVENTPIPE_HTTP_PORT": "99999"}
    status, stderr = run("dev", "--data-dir", str(tmp_path / "data"), env=env)
    assert_one_line_error(status, stderr, "cannot listen on 127.0.0.1:99999")


def test_a_data_directory_holding_something_else_as_its_database_is_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "identity.sqlite3").write_text("not a database")
    status, stderr = run(
        "users", "add", "alice", "--password", "pw", "--data-dir", f"{tmp_path}/data"
    )
    assert_one_line_error(status, stderr, "the identity database cannot be used")


def test_migrate_against_an_unreachable_clickhouse_is_one_line(tmp_path: Path) -> None:
    env = {"EVENTPIPE_CLICKHOUSE_DSN": f"http://127.0.0.1:{free_port()}"}
    status, stderr = run("migrate", "--data-dir", str(tmp_path / "data"), env=env)
    assert_one_line_error(status, stderr, "cannot apply the migrations")


def test_a_data_directory_is_not_required_when_nothing_is_kept_there(regular_file: Path) -> None:
    # Identity in PostgreSQL, exports in S3, a ClickHouse server: a read-only file system will do.
    env = {
        "EVENTPIPE_IDENTITY_DSN": f"postgresql://u:p@127.0.0.1:{free_port()}/db",
        "EVENTPIPE_S3_ENDPOINT": f"127.0.0.1:{free_port()}",
        "EVENTPIPE_CLICKHOUSE_DSN": f"http://127.0.0.1:{free_port()}",
    }
    status, stderr = run(
        "migrate", "--only", "clickhouse", "--data-dir", str(regular_file), env=env
    )
    assert_one_line_error(status, stderr, "cannot apply the migrations")


def test_a_worker_needs_the_data_directory_even_with_every_store_remote(
    regular_file: Path,
) -> None:
    """Faust keeps its tables there whatever the stores."""
    env = {
        "EVENTPIPE_IDENTITY_DSN": f"postgresql://u:p@127.0.0.1:{free_port()}/db",
        "EVENTPIPE_S3_ENDPOINT": f"127.0.0.1:{free_port()}",
        "EVENTPIPE_CLICKHOUSE_DSN": f"http://127.0.0.1:{free_port()}",
    }
    status, stderr = run("worker", "--data-dir", str(regular_file), env=env)
    assert_one_line_error(status, stderr, "cannot write in the data directory")


def test_migrating_a_remote_identity_store_needs_no_data_directory(regular_file: Path) -> None:
    """The embedded ClickHouse default does not matter to ``--only identity``."""
    env = {"EVENTPIPE_IDENTITY_DSN": f"postgresql://u:p@127.0.0.1:{free_port()}/db"}
    status, stderr = run("migrate", "--only", "identity", "--data-dir", str(regular_file), env=env)
    assert status != 0 and "Traceback" not in stderr, stderr
    assert "data directory" not in stderr and "identity" in stderr.strip().splitlines()[-1], stderr
