"""The CVAT source tree the conformance suite reads its expectations from, at run time.

``CVAT_SOURCE`` names it (default: ``../shared/cvat-2.73`` beside this repository). A missing tree
or file fails the test that needs it, naming what to provide: a conformance check that cannot
read CVAT's files has checked nothing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
from clickhouse_connect.driver.client import Client

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO.parent / "shared" / "cvat-2.73"


def cvat_source() -> Path:
    return Path(os.environ.get("CVAT_SOURCE", DEFAULT_SOURCE)).resolve()


def cvat_file(relative: str) -> Path:
    """A file of CVAT's source tree; the test fails, saying what to do, when it is not there."""
    path = cvat_source() / relative
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: set CVAT_SOURCE to a CVAT source tree (a checkout of "
            "github.com/cvat-ai/cvat at the release to check) holding it",
            pytrace=False,
        )
    return path


def load_module(relative: str, name: str) -> ModuleType:
    """A Python file of CVAT's that imports nothing of Django, loaded as a module."""
    path = cvat_file(relative)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cvat_init(client: Client, database: str | None = None) -> list[str]:
    """Run CVAT's ClickHouse initializer (``components/analytics/clickhouse/init.py``, which CVAT's
    backend runs at every start) on ``database`` (default: ``client``'s), as its ``main`` does,
    which leaves it the client's default; return the names of the migrations it applied."""
    init = load_module("components/analytics/clickhouse/init.py", "cvat_clickhouse_init")
    target = database or str(client.database)
    client.database = "default"  # the target may not exist yet
    init.create_db(client, target)
    client.database = target
    for migration in init.migrations:
        migration(client)
    return [migration.__name__ for migration in init.migrations]
