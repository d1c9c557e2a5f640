"""Write (``make lock``) or check (``--check``) eventpipe's lock files.

- ``requirements.lock``: the production install, pyproject.toml's dependencies without extras.
  The image (deploy/Dockerfile) installs exactly these versions.
- ``requirements-dev.lock``: a development install (``make install``): eventpipe with its
  ``dev`` and ``embedded`` extras, and the benchmarks.

Each is resolved by uv for every platform and starts with a digest of what it was resolved from:
the dependency tables of the pyproject.toml files and uv's arguments. ``--check`` recomputes
the digests, so a dependency changed without ``make lock`` fails the tests and ``make install``.
Writing again keeps every pin that still fits: uv prefers the versions of the file it rewrites.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.11"
DIGEST_PREFIX = "# inputs: sha256:"


@dataclass(frozen=True)
class Lock:
    path: str
    # What uv resolves: requirement lines, as in a requirements file.
    requirements: tuple[str, ...]
    # The tables of each pyproject.toml those requirements read.
    tables: tuple[tuple[str, tuple[str, ...]], ...]

    def digest(self) -> str:
        inputs: dict[str, object] = {"requirements": self.requirements}
        for name, keys in self.tables:
            project = tomllib.loads((ROOT / name).read_text(encoding="utf-8"))["project"]
            inputs[name] = {key: project.get(key) for key in keys}
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    def written_digest(self) -> str | None:
        path = ROOT / self.path
        if not path.is_file():
            return None
        first = path.read_text(encoding="utf-8").partition("\n")[0]
        return first.removeprefix(DIGEST_PREFIX) if first.startswith(DIGEST_PREFIX) else None

    def write(self) -> None:
        path = ROOT / self.path
        resolved = subprocess.run(
            [
                sys.executable, "-m", "uv", "pip", "compile", "-",
                "--universal", "--python-version", PYTHON_VERSION,
                "--no-header", "--quiet", "--output-file", str(path),
            ],
            input="\n".join(self.requirements),
            cwd=ROOT, text=True, capture_output=True, check=False,
        )  # fmt: skip
        if resolved.returncode != 0:
            sys.exit(f"{self.path}: uv could not resolve the dependencies:\n{resolved.stderr}")
        body = path.read_text(encoding="utf-8")
        header = (
            f"{DIGEST_PREFIX}{self.digest()}\n"
            "# Written by `make lock` (deploy/lock.py) from pyproject.toml: do not edit.\n"
        )
        path.write_text(header + body, encoding="utf-8")


MAIN = "pyproject.toml"
LOCKS = (
    Lock("requirements.lock", (".",), ((MAIN, ("requires-python", "dependencies")),)),
    Lock(
        "requirements-dev.lock",
        ("-e .[dev,embedded]", "-e ./benchmarks"),
        (
            (MAIN, ("requires-python", "dependencies", "optional-dependencies")),
            ("benchmarks/pyproject.toml", ("dependencies",)),
        ),
    ),
)


def stale_locks() -> list[str]:
    """What is wrong with each lock file that no longer matches its inputs."""
    return [
        f"{lock.path} does not match the dependencies in pyproject.toml: run `make lock`"
        for lock in LOCKS
        if lock.written_digest() != lock.digest()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; write nothing")
    if parser.parse_args().check:
        if problems := stale_locks():
            sys.exit("\n".join(problems))
        return
    for lock in LOCKS:
        lock.write()


if __name__ == "__main__":
    main()
