"""Where the tests find CVAT's own files, the contract eventpipe is checked against.

``CVAT_SOURCE`` names a CVAT source tree (relative paths are taken from the repository's root);
without it, ``../shared/cvat-2.73`` beside the repository. A check that needs CVAT's files fails
when they are not there, naming what is missing: passing without them would claim a conformance
nobody checked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CVAT_SOURCE_VARIABLE = "CVAT_SOURCE"
DEFAULT_CVAT_SOURCE = "../shared/cvat-2.73"


def cvat_source(*required: str, environ: Mapping[str, str] = os.environ) -> Path:
    """The CVAT source tree, holding every ``required`` file (paths relative to the tree)."""
    source = (ROOT / environ.get(CVAT_SOURCE_VARIABLE, DEFAULT_CVAT_SOURCE)).resolve()
    missing = [name for name in required if not (source / name).is_file()]
    if missing:
        pytest.fail(
            f"CVAT's source is needed at {source} and lacks {', '.join(missing)}: set "
            f"{CVAT_SOURCE_VARIABLE} to a CVAT checkout (default {DEFAULT_CVAT_SOURCE}, "
            "relative to the repository)",
            pytrace=False,
        )
    return source
