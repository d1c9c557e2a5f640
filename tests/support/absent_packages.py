"""Python code run in a fresh interpreter where some packages cannot be imported, as in an
install without them: no module this test session loaded can hide an import there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
PRODUCT = ("eventpipe", "eventpipe_cli", "ingest_gateway", "stream_processors", "exporter")

_ABSENT = """
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {packages!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
"""

# Imports every module of the product.
IMPORT_EVERY_MODULE = f"""
import importlib, pkgutil
for package in {PRODUCT!r}:
    module = importlib.import_module(package)
    for found in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(found.name)
"""


def run_without(packages: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where none of ``packages`` (top-level names) can be imported."""
    program = _ABSENT.format(packages=packages) + code
    return subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=False
    )
