"""Shared by the checks of deploy/ and deploy/cvat, which cannot run the files (no Docker)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# What replaces Vector in CVAT's own deployments (docs/cvat.md).
CVAT_DEPLOY = ROOT / "deploy" / "cvat"
CVAT_OVERRIDE = CVAT_DEPLOY / "docker-compose.eventpipe.yml"
CVAT_HELM_VALUES = CVAT_DEPLOY / "cvat-helm-values.yaml"
INTAKE_MANIFEST = CVAT_DEPLOY / "kubernetes-intake.yaml"
VECTOR_ALIAS_MANIFEST = CVAT_DEPLOY / "kubernetes-vector-alias.yaml"


def filled(value: str) -> str:
    """A value as compose fills in its ${...} variables: any password will do to read its shape."""
    return re.sub(r"\$\{[^}]*\}", "secret", value)


def load_all(path: Path) -> list[Any]:
    """Every document of a YAML file, without the empty ones."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
