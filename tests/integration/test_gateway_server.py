"""``eventpipe gateway`` as operators run it: a process configured by EVENTPIPE_* variables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from tests.integration.gateway_support import events_topic_size

BODY = {
    "events": [{"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z"}],
    "timestamp": "2026-01-01T00:00:01Z",
}


@pytest.mark.parametrize("workers", [1, 2])
async def test_gateway_command_serves_until_terminated(
    settings: Settings, tmp_path: Path, workers: int
) -> None:
    IdentityStore(settings.data_dir).add_user("alice", "alice-pw")
    port = free_port()
    log_path = tmp_path / "gateway.log"
    command = [str(Path(sys.executable).with_name("eventpipe")), "gateway", "--port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env={**os.environ, **settings.to_env()},
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while not _ready(url):
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the gateway did not become ready"
                time.sleep(0.1)
            async with httpx.AsyncClient(base_url=url, auth=("alice", "alice-pw")) as client:
                for _ in range(4):
                    assert (await client.post("/api/events", json=BODY)).status_code == 201
            assert await events_topic_size(settings) == 4
        finally:
            process.send_signal(signal.SIGTERM)
            # uvicorn shuts down gracefully, then a single process re-raises the signal it caught.
            assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    log = log_path.read_text()
    assert "Application shutdown complete" in log and "Traceback" not in log


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready").status_code == 200
    except httpx.TransportError:
        return False
