"""The README's quick start, run as written against a real ``eventpipe dev``: its shell commands in
bash, its Python snippet in a Python process, from a directory laid out as a checkout after
``make run`` (``.venv/`` and ``./data``). The stack listens on a free port, which takes the place
of the documented 127.0.0.1:8080 in the commands; nothing else of them is changed."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from eventpipe.events_table import EXPORT_COLUMNS
from eventpipe_cli.embedded_broker import free_port
from tests.e2e.dev_stack_support import DevStack, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds processes in /proc"),
]

ROOT = Path(__file__).parents[2]
DOCUMENTED_ADDRESS = "127.0.0.1:8080"
SNIPPET_TIMEOUT = 120.0


def quick_start_blocks(language: str) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"^```{language}\n(.*?)^```$", quick_start, flags=re.MULTILINE | re.DOTALL)


def rows_inserted(metrics_url: str) -> float:
    try:
        text = httpx.get(metrics_url, trust_env=False).text
    except httpx.TransportError:
        return 0.0
    match = re.search(r"^eventpipe_rows_inserted_total (\S+)$", text, flags=re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_make_run_is_the_stack_this_test_starts() -> None:
    """The test starts ``eventpipe dev`` on ``./data``, the default data directory: what
    ``make run`` runs once it has installed."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert [line.strip() for line in recipe.splitlines()[1:]] == ["$(BIN)/eventpipe dev"]
    assert "make run" in quick_start_blocks("sh")[0]


def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    assert shutil.which("curl"), "the quick start's commands use curl"
    _, *commands = quick_start_blocks("sh")
    (snippet,) = quick_start_blocks("python")
    assert commands, "the quick start shows the commands to run beside the stack"
    port = free_port()
    checkout = tmp_path / "checkout"
    stack = DevStack(checkout, port, data_dir=checkout / "data")
    try:
        (checkout / ".venv").symlink_to(Path(sys.executable).parent.parent)
        # Local addresses go straight to the stack, as on a machine without an HTTP proxy.
        env = {**stack.environment, "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
        stack.wait_ready()

        def run_as_written(interpreter: list[str], code: str) -> str:
            """Run the code with the stack's address in place of the documented one; its
            output."""
            done = subprocess.run(
                [*interpreter, code.replace(DOCUMENTED_ADDRESS, f"127.0.0.1:{port}")],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=SNIPPET_TIMEOUT,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        shell_output = run_as_written(["bash", "-e", "-o", "pipefail", "-c"], "\n".join(commands))
        posted = json.loads(shell_output[shell_output.index("{") :])
        # The event posted with the token is stored before the export the snippet starts.
        worker_metrics = stack.metrics_url("worker")
        wait_for("the event in ClickHouse", lambda: rows_inserted(worker_metrics) >= 1, 60)
        exported_csv = run_as_written([sys.executable, "-c"], snippet)
    finally:
        stack.kill_everything()

    (event,) = posted["events"]
    assert (event["scope"], event["job_id"], event["source"]) == ("load:job", 1, "client")
    assert (event["user_name"], event["user_email"]) == ("alice", "alice@example.com")
    # Sent one second before the request's own timestamp, stored one second before it arrived.
    stored_at = datetime.fromisoformat(event["timestamp"])
    assert abs(stored_at - (datetime.now(UTC) - timedelta(seconds=1))) < timedelta(minutes=2)

    header, *rows = csv.reader(exported_csv.strip().splitlines())
    assert header == list(EXPORT_COLUMNS)
    exported = [dict(zip(header, row, strict=True)) for row in rows]
    assert [(row["scope"], row["job_id"], row["user_name"]) for row in exported] == [
        ("load:job", "1", "alice")
    ]
