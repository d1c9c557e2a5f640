"""deploy/cvat's own files: the Kubernetes manifests are valid objects, and the docs explain both
deployments. How they fit CVAT's own deployment is checked against CVAT's files by
tests/conformance/test_cvat_deployment.py."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from tests.integration.deploy_support import (
    CVAT_HELM_VALUES,
    CVAT_OVERRIDE,
    INTAKE_MANIFEST,
    ROOT,
    VECTOR_ALIAS_MANIFEST,
    load_all,
)


@pytest.mark.parametrize("path", [INTAKE_MANIFEST, VECTOR_ALIAS_MANIFEST], ids=lambda p: p.name)
def test_kubernetes_manifests_are_valid_objects(path: Path) -> None:
    oldest = kubernetes_validate.utils.all_versions()[0]
    for version in (oldest, kubernetes_validate.latest_version()):
        for doc in load_all(path):
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_docs_explain_both_deployments() -> None:
    docs = (ROOT / "docs" / "cvat.md").read_text()
    helm_files = [CVAT_HELM_VALUES, INTAKE_MANIFEST, VECTOR_ALIAS_MANIFEST]
    for heading, files in {
        "## Deploying with CVAT's docker compose": [CVAT_OVERRIDE],
        "## Deploying with CVAT's Helm chart": helm_files,
        "## Switching an existing CVAT over": [],
    }.items():
        assert heading in docs
        section = docs.split(heading, 1)[1].split("\n## ", 1)[0]
        for path in files:
            assert path.name in section, (heading, path.name)
    assert "docs/cvat.md" in (ROOT / "README.md").read_text()
