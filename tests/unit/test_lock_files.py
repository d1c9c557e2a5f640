"""The lock files: the image and `make install` get the same versions on every build, and a
dependency changed in pyproject.toml without `make lock` is caught."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
FILES = ("pyproject.toml", "benchmarks/pyproject.toml", "deploy/lock.py")
LOCKS = ("requirements.lock", "requirements-dev.lock")


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "deploy" / "lock.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )


def pins(lock: str) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;]+)", (ROOT / lock).read_text(), re.M)
    return {canonicalize_name(name): version for name, version in found}


def test_the_lock_files_match_pyproject() -> None:
    finished = check(ROOT)
    assert finished.returncode == 0, finished.stderr


def test_a_dependency_changed_without_make_lock_is_named(tmp_path: Path) -> None:
    for name in (*FILES, *LOCKS):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10"', '"orjson>=3.11"'))

    finished = check(tmp_path)

    assert finished.returncode == 1
    assert finished.stderr.splitlines() == [
        f"{lock} does not match the dependencies in pyproject.toml: run `make lock`"
        for lock in LOCKS
    ]


def test_the_production_lock_pins_every_dependency_and_no_embedded_engine() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    production = pins("requirements.lock")
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert requirement.specifier.contains(production[name]), (name, production[name])
    extra = project["optional-dependencies"]["embedded"]
    embedded = {canonicalize_name(Requirement(line).name) for line in extra}
    assert embedded <= pins("requirements-dev.lock").keys()
    # numpy and pandas came only with chDB.
    assert production.keys() & (embedded | {"numpy", "pandas", "pyarrow"}) == set()


def test_the_image_installs_the_lock() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.findall(r"pip install ([^\\\n]*)", dockerfile) == ["-r requirements.lock "]
