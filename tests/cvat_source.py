"""CVAT v2.73.0's own files, the contract eventpipe fits, read where CI keeps them:
``../shared/cvat-2.73/`` beside the repository. A test that needs one fails, naming the path,
when it is absent: it never passes without having read it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

CVAT_SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "cvat-2.73"


def cvat_file(relative: str) -> Path:
    """The file of CVAT's source at ``relative``; the test fails when it is missing."""
    path = CVAT_SOURCE / relative
    if not path.is_file():
        pytest.fail(f"CVAT's source file {path} is missing: these tests read CVAT v2.73.0 there")
    return path


@functools.cache
def cvat_schema() -> dict[str, Any]:
    """CVAT's OpenAPI document, ``cvat/schema.yml``."""
    document: dict[str, Any] = yaml.load(
        cvat_file("cvat/schema.yml").read_text(), Loader=yaml.CSafeLoader
    )
    return document
