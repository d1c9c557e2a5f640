"""A check that needs CVAT's files fails without them, naming what is missing and how to set it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cvat_source import cvat_source


def test_a_missing_cvat_source_fails_naming_the_files_and_the_variable(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    with pytest.raises(pytest.fail.Exception) as failure:
        cvat_source(
            "docker-compose.yml", "helm-chart/Chart.yaml", environ={"CVAT_SOURCE": str(tmp_path)}
        )
    message = str(failure.value)
    assert (
        "helm-chart/Chart.yaml" in message and "docker-compose.yml" not in message.split("lacks")[1]
    )
    assert "CVAT_SOURCE" in message


def test_a_relative_cvat_source_is_taken_from_the_repository(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")
    relative = Path(*[".."] * len(root.parts[1:])) / tmp_path.relative_to("/")
    assert cvat_source("docker-compose.yml", environ={"CVAT_SOURCE": str(relative)}) == tmp_path
