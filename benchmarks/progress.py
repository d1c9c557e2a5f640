"""Progress of a benchmark, on standard error: standard output carries only the report, so
``--json`` output can be piped straight into another program."""

from __future__ import annotations

import sys


def progress(*lines: str) -> None:
    print(*lines, sep="\n", file=sys.stderr, flush=True)
