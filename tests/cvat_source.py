"""CVAT's own files, read at run time: the contract eventpipe is checked against.

The tree is ``CVAT_SOURCE`` (default ``../shared/cvat-2.73`` beside the repository, CVAT v2.73.0).
A test that needs a file fails naming the path when it is not there, rather than passing.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

DEFAULT_SOURCE = Path(__file__).parents[1].parent / "shared" / "cvat-2.73"


def cvat_file(relative: str) -> Path:
    """The path of a file of the CVAT source tree; the test fails when it is missing."""
    root = Path(os.environ.get("CVAT_SOURCE") or DEFAULT_SOURCE)
    path = root / relative
    if not path.is_file():
        pytest.fail(
            f"CVAT's {relative} is missing: {path} does not exist. Set CVAT_SOURCE to a CVAT "
            f"source tree (default {DEFAULT_SOURCE})",
            pytrace=False,
        )
    return path


def parsed(relative: str) -> ast.Module:
    return ast.parse(cvat_file(relative).read_text(), filename=relative)


def module_constants(relative: str) -> dict[str, object]:
    """The module-level names of a CVAT file bound to literals (``X = "a"``), by name."""
    constants: dict[str, object] = {}
    for node in parsed(relative).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    constants[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return constants
