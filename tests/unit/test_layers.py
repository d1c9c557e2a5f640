"""The import direction between eventpipe's packages.

The kernel (``eventpipe``) imports none of the others; each service imports only the kernel and
itself; the top layer (``eventpipe_cli``) and the benchmarks may import anything. Every import
counts, including those inside functions, so a lazy import cannot hide a wrong direction.

The tests import the product, never the benchmarks (their harness is ``eventpipe_cli.testing``):
only tests/benchmarks/, which tests the benchmark commands, may.

No module imports itself through others (an import circle), even under ``TYPE_CHECKING``.

Inside the gateway the direction is, from the bottom: the HTTP core (the package's own modules),
``limits``, ``identity``, ``events``, ``exports``, ``intake``, then the modules that put the app
together (``app``, ``routes``, ``openapi``, ``server``). Each imports only its own sub-package and
those below it, so no circle can form between sub-packages; a new sub-package must be placed in
this order before it may exist.
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


# The gateway's layers, from the bottom; "core" is the package's own modules.
GATEWAY: Final = "ingest_gateway"
GATEWAY_LAYERS: Final = ("core", "limits", "identity", "events", "exports", "intake", "assembly")
# The modules that put the app together: above every sub-package.
GATEWAY_ASSEMBLY: Final = frozenset({"app", "routes", "openapi", "server"})


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


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each of the project's modules and the project modules it imports (``from a import b``
    counts as importing ``a.b`` when that is a module, else ``a``)."""
    paths = {
        module_name(path, root): path
        for package in PACKAGES
        if (root / package).is_dir()
        for path in (root / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    imported.add(submodule if submodule in paths else node.module)
        graph[module] = {name for name in imported if name in paths} - {module}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan's
    strongly connected components of more than one module), each sorted."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                lowest[module] = min(lowest[module], lowest[target])
            elif target in on_stack:
                lowest[module] = min(lowest[module], index[target])
        if lowest[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(circles)


def gateway_layer(module: str) -> str:
    """The layer of one of the gateway's modules: the sub-package it is in (placed or not),
    ``assembly``, or ``core`` for the package's own modules."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in GATEWAY_LAYERS):
        return parts[1]
    return "assembly" if len(parts) == 2 and parts[1] in GATEWAY_ASSEMBLY else "core"


def gateway_layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a gateway module from a higher layer, or from an unplaced sub-package."""
    found = []
    for module in sorted(name for name in graph if name.split(".")[0] == GATEWAY):
        layer = gateway_layer(module)
        if layer not in GATEWAY_LAYERS:
            found.append(f"{module} is in a sub-package with no place in GATEWAY_LAYERS")
            continue
        for target in sorted(graph[module]):
            if target.split(".")[0] != GATEWAY:
                continue
            target_layer = gateway_layer(target)
            if target_layer not in GATEWAY_LAYERS or GATEWAY_LAYERS.index(
                target_layer
            ) > GATEWAY_LAYERS.index(layer):
                found.append(f"{module} ({layer}) imports {target} ({target_layer})")
    return found


def test_no_module_imports_itself_through_others() -> None:
    assert import_circles(module_graph()) == []


def test_an_import_circle_is_named_even_under_type_checking(tmp_path: Path) -> None:
    (tmp_path / "ingest_gateway").mkdir()
    (tmp_path / "ingest_gateway" / "__init__.py").write_text("")
    (tmp_path / "ingest_gateway" / "alpha.py").write_text("from ingest_gateway import beta\n")
    (tmp_path / "ingest_gateway" / "beta.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from ingest_gateway.alpha import Alpha\n"
    )
    (tmp_path / "ingest_gateway" / "gamma.py").write_text("import ingest_gateway.beta\n")
    assert import_circles(module_graph(tmp_path)) == [
        ["ingest_gateway.alpha", "ingest_gateway.beta"]
    ]


def test_the_gateway_imports_only_downwards() -> None:
    assert gateway_layer_violations(module_graph()) == []


def test_an_upward_import_in_the_gateway_is_named(tmp_path: Path) -> None:
    gateway = tmp_path / "ingest_gateway"
    for package in ("identity", "exports", "reports"):
        (gateway / package).mkdir(parents=True)
        (gateway / package / "__init__.py").write_text("")
    (gateway / "__init__.py").write_text("")
    (gateway / "errors.py").write_text("")
    (gateway / "app.py").write_text("from ingest_gateway.exports import flow\n")
    (gateway / "exports" / "flow.py").write_text(
        "from ingest_gateway.errors import ApiError\nfrom ingest_gateway.identity import who\n"
    )
    (gateway / "identity" / "who.py").write_text(
        "def late():\n    from ingest_gateway.exports.flow import start\n"
    )
    (gateway / "reports" / "daily.py").write_text("")
    assert gateway_layer_violations(module_graph(tmp_path)) == [
        "ingest_gateway.identity.who (identity) imports ingest_gateway.exports.flow (exports)",
        "ingest_gateway.reports.daily is in a sub-package with no place in GATEWAY_LAYERS",
    ]
