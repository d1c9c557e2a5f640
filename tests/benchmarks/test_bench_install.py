"""The benchmarks are a distribution of their own: the product runs without them, and
``eventpipe bench`` says how to get them where they are missing."""

from __future__ import annotations

import sys

import pytest

from eventpipe_cli.cli import main
from tests.support.absent_packages import IMPORT_EVERY_MODULE, run_without


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
    finished = run_without(("benchmarks", "matplotlib"), IMPORT_EVERY_MODULE)
    assert finished.returncode == 0, finished.stderr[-3000:]
