"""Shared by the checks of deploy/ and deploy/cvat, which cannot run the files (no Docker)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


def filled(value: str) -> str:
    """A value as compose fills in its ${...} variables: any password will do to read its shape."""
    return re.sub(r"\$\{[^}]*\}", "secret", value)


def load_all(path: Path) -> list[Any]:
    """Every document of a YAML file, without the empty ones."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
