"""Shared by the checks of deploy/ and deploy/cvat, which cannot run the files (no Docker)."""

from __future__ import annotations

import re


def filled(value: str) -> str:
    """A value as compose fills in its ${...} variables: any password will do to read its shape."""
    return re.sub(r"\$\{[^}]*\}", "secret", value)
