"""The benchmarks are a distribution of their own: the product runs without them, and
``eventpipe bench`` says how to get them where they are missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eventpipe_cli.cli import main

ROOT = Path(__file__).parents[2]
PRODUCT = ("eventpipe", "eventpipe_cli", "ingest_gateway", "stream_processors", "exporter")


def test_bench_without_the_benchmarks_installed_ends_with_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A None entry makes ``import benchmarks`` fail as it does where the package is absent.
    monkeypatch.setitem(sys.modules, "benchmarks", None)
    assert main(["bench", "export", "--rows", "10"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("eventpipe: the benchmarks are not installed: pip install -e")


def test_every_product_module_imports_without_the_benchmarks_or_their_plotting_library() -> None:
    # In a fresh interpreter, so that no module this test session loaded hides an import.
    program = f"""
import importlib, pkgutil, sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("benchmarks", "matplotlib"):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
for package in {PRODUCT!r}:
    module = importlib.import_module(package)
    for found in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(found.name)
"""
    finished = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
