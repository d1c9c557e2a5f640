"""The import direction between eventpipe's packages.

The kernel (``eventpipe``) imports none of the others; each service imports only the kernel and
itself; the top layer (``eventpipe_cli``) and the benchmarks may import anything. Every import
counts, including those inside functions, so a lazy import cannot hide a wrong direction.
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


def layer_violations(package: str, root: Path = ROOT) -> list[str]:
    allowed = ALLOWED[package]
    found = []
    for path in sorted((root / package).rglob("*.py")):
        for line, module in project_imports(path):
            if module.split(".")[0] not in allowed:
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


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
