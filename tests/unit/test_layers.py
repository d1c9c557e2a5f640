"""The import direction between eventpipe's packages.

The kernel (``eventpipe``) imports none of the others; each service imports only the kernel and
itself; the top layer (``eventpipe_cli``) and the benchmarks may import anything. Every import
counts, including those inside functions, so a lazy import cannot hide a wrong direction.

The tests import the product, never the benchmarks (their harness is ``eventpipe_cli.testing``):
only tests/benchmarks/, which tests the benchmark commands, may.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
KERNEL: Final = "eventpipe"
SERVICES: Final = ("ingest_gateway", "stream_processors", "exporter")
TOP: Final = ("eventpipe_cli", "benchmarks")
PACKAGES: Final = (KERNEL, *SERVICES, *TOP)
# What each package may import of the project's own packages.
ALLOWED: Final = {
    KERNEL: {KERNEL},
    **{service: {KERNEL, service} for service in SERVICES},
    **{top: set(PACKAGES) for top in TOP},
}


def project_imports(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every absolute import of one of the project's packages."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            # A relative import stays inside its own package.
            continue
        for module in modules:
            if module.split(".")[0] in PACKAGES:
                yield node.lineno, module


def violations(paths: Iterator[Path], allowed: set[str], root: Path) -> list[str]:
    found = []
    for path in sorted(paths):
        for line, module in project_imports(path):
            if module.split(".")[0] not in allowed:
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def layer_violations(package: str, root: Path = ROOT) -> list[str]:
    return violations((root / package).rglob("*.py"), ALLOWED[package], root)


def benchmark_imports_in_tests(root: Path = ROOT) -> list[str]:
    """Imports of the benchmarks in tests/, outside tests/benchmarks/."""
    tests = root / "tests"
    paths = (p for p in tests.rglob("*.py") if not p.is_relative_to(tests / "benchmarks"))
    return violations(paths, set(PACKAGES) - {"benchmarks"}, root)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_its_layer_and_below(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()
    assert layer_violations(package) == []


def test_a_wrong_import_is_named_even_inside_a_function(tmp_path: Path) -> None:
    (tmp_path / "ingest_gateway").mkdir()
    (tmp_path / "ingest_gateway" / "leak.py").write_text(
        "import os\nfrom eventpipe.settings import Settings\nfrom . import errors\n\n"
        "def late():\n    from exporter.service import run_exporter\n"
    )
    assert layer_violations("ingest_gateway", tmp_path) == [
        "ingest_gateway/leak.py:6 imports exporter.service"
    ]


def test_no_test_imports_the_benchmarks_but_those_of_the_benchmark_commands() -> None:
    assert benchmark_imports_in_tests() == []


def test_a_test_importing_the_benchmarks_is_named(tmp_path: Path) -> None:
    (tmp_path / "tests" / "benchmarks").mkdir(parents=True)
    (tmp_path / "tests" / "e2e").mkdir()
    (tmp_path / "tests" / "benchmarks" / "test_bench.py").write_text("import benchmarks.suite\n")
    (tmp_path / "tests" / "e2e" / "test_flow.py").write_text(
        "from eventpipe_cli.testing.pipeline import LocalPipeline\n"
        "def helper():\n    from benchmarks.ingest import raw_produce_rates\n"
    )
    assert benchmark_imports_in_tests(tmp_path) == [
        "tests/e2e/test_flow.py:3 imports benchmarks.ingest"
    ]
