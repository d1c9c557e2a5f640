"""A started gateway process keeps the garbage collector off the objects it lives with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from eventpipe.settings import Settings
from ingest_gateway.server import YOUNG_GENERATION_THRESHOLD


def test_each_gateway_process_freezes_what_it_started_with(tmp_path: Path) -> None:
    # In an interpreter of its own, as uvicorn starts a worker process: frozen here, the test
    # process's heap would change how the rest of the suite collects.
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, json\n"
            "from ingest_gateway.server import app_from_env\n"
            "app_from_env()\n"
            "print(json.dumps([gc.get_freeze_count(), gc.get_threshold()[0]]))",
        ],
        env=Settings(data_dir=tmp_path).child_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    frozen, young = json.loads(started.stdout.splitlines()[-1])
    # Starlette, the routes, the OpenAPI document and the clients: tens of thousands of objects.
    assert frozen > 10_000
    assert young == YOUNG_GENERATION_THRESHOLD
