"""``eventpipe dev --intake-port``: CVAT's server events, posted as its handler posts them, come
out of eventpipe's own export."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from eventpipe_cli.embedded_broker import free_port
from tests.e2e.dev_stack_support import DevStack
from tests.integration.export_api_support import ExportClient


def test_dev_serves_the_intake_and_its_events_are_exported(
    start_stack: Callable[..., DevStack],
) -> None:
    intake_port = free_port()
    stack = start_stack("--intake-port", str(intake_port))
    stack.wait_ready()
    intake = f"http://127.0.0.1:{intake_port}/"
    assert f"intake for CVAT's server at {intake}" in stack.log()
    stack.cli("users", "add", "admin", "--password", "admin-pass", "--admin")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    batch = [
        {
            "scope": scope,
            "timestamp": str((at + timedelta(seconds=n)).timestamp()),
            "source": "server",
            "payload": orjson.dumps({"request": {"id": f"r{n}"}}).decode(),
            "task_id": 40 + n,
            "user_id": 9,
            "user_name": "carol",
            "request_id": f"r{n}",
        }
        for n, scope in enumerate(("create:task", "export:dataset"))
    ]
    answer = httpx.post(intake, json=batch)
    assert (answer.status_code, answer.json()) == (200, {"accepted": 2, "dead_lettered": 0})

    exports = ExportClient(stack.url, httpx.BasicAuth("admin", "admin-pass"))
    deadline = time.monotonic() + 60
    while len(rows := exports.export_rows(user_id=9)) < 2:
        assert time.monotonic() < deadline, f"exported {rows}"
        time.sleep(0.5)
    assert [(r["scope"], r["source"], r["task_id"], r["user_name"]) for r in rows] == [
        ("create:task", "server", "40", "carol"),
        ("export:dataset", "server", "41", "carol"),
    ]
    assert datetime.fromisoformat(rows[1]["timestamp"]) == at + timedelta(seconds=1)
