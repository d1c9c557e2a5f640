"""deploy/cvat: eventpipe in place of Vector in CVAT's compose and Helm deployments.

Neither CVAT nor Docker runs here, so the files are checked for what can be checked: CVAT's
backend is pointed at addresses eventpipe really serves, with the settings eventpipe really reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from eventpipe.settings import Settings
from eventpipe_cli.cli import build_parser
from ingest_gateway.intake import check_intake_settings
from tests.integration.deploy_support import filled

ROOT = Path(__file__).resolve().parents[2]
CVAT = ROOT / "deploy" / "cvat"
# The services of CVAT's docker-compose.yml that ship events (they take its x-backend-env).
CVAT_BACKEND = {
    "cvat_server",
    "cvat_worker_utils",
    "cvat_worker_import",
    "cvat_worker_export",
    "cvat_worker_annotation",
    "cvat_worker_webhooks",
    "cvat_worker_quality_reports",
    "cvat_worker_chunks",
    "cvat_worker_consensus",
}


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((CVAT / "docker-compose.eventpipe.yml").read_text())[
        "services"
    ]
    return services


def aliases(service: dict[str, Any]) -> set[str]:
    networks = service.get("networks", {})
    if isinstance(networks, list):
        return set()
    return {alias for network in networks.values() for alias in network.get("aliases", [])}


def serving(override: dict[str, Any], command: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (name, s) for name, s in override.items() if s.get("command", [None, None])[1] == command
    ]
    return found


def settings_of(service: dict[str, Any]) -> Settings:
    env = {k: filled(str(v)) for k, v in service["environment"].items()}
    return Settings.from_env(env)


def test_vector_and_cvats_clickhouse_no_longer_start(override: dict[str, Any]) -> None:
    for replaced in ("cvat_vector", "cvat_clickhouse"):
        assert override[replaced]["profiles"], replaced


def test_cvats_backend_ships_to_the_intake_and_reads_eventpipes_table(
    override: dict[str, Any],
) -> None:
    _, gateway = serving(override, "gateway")
    gateway_settings = settings_of(gateway)
    check_intake_settings(gateway_settings)
    assert gateway_settings.intake_port and "ports" not in gateway  # CVAT's network only
    # Of the gateway's listeners, only the intake is on that network: API and metrics stay inside.
    assert gateway_settings.intake_host == "0.0.0.0"
    assert gateway_settings.http_host == "127.0.0.1"
    clickhouse = override["eventpipe_clickhouse"]
    assert override.keys() >= CVAT_BACKEND
    for name in CVAT_BACKEND:
        env = override[name]["environment"]
        assert env["DJANGO_LOG_SERVER_HOST"] in aliases(gateway), name
        assert int(env["DJANGO_LOG_SERVER_PORT"]) == gateway_settings.intake_port, name
        assert env["CLICKHOUSE_HOST"] in aliases(clickhouse), name
        assert int(env["CLICKHOUSE_PORT"]) == 8123
        assert env["CLICKHOUSE_DB"] == gateway_settings.clickhouse_database
        assert env["CLICKHOUSE_USER"] == clickhouse["environment"]["CLICKHOUSE_USER"]
        assert "${" in env["CLICKHOUSE_PASSWORD"]


def test_eventpipe_writes_the_clickhouse_cvat_reads(override: dict[str, Any]) -> None:
    clickhouse = override["eventpipe_clickhouse"]
    for command in ("gateway", "worker"):
        name, service = serving(override, command)
        build_parser().parse_args(service["command"][1:])
        settings = settings_of(service)
        dsn = urlsplit(settings.clickhouse_dsn)
        assert dsn.hostname in aliases(clickhouse) | {"eventpipe_clickhouse"}, name
        assert dsn.username == clickhouse["environment"]["CLICKHOUSE_USER"]
        # The DSN names no database: `default` keeps the migration records, cvat the events.
        assert dsn.path.strip("/") in ("", "default")
        assert settings.clickhouse_database == "cvat"
        assert settings.kafka_bootstrap_servers.split(":")[0] in override


def test_helm_values_point_cvat_at_the_intake_service() -> None:
    values = yaml.safe_load((CVAT / "cvat-helm-values.yaml").read_text())
    service, policy = yaml.safe_load_all((CVAT / "kubernetes-intake.yaml").read_text())
    gateway = next(
        doc
        for doc in yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "gateway.yaml").read_text())
        if doc["kind"] == "Deployment"
    )
    assert values["analytics"]["enabled"] is False
    env = {e["name"]: e for e in values["cvat"]["backend"]["additionalEnv"]}
    host = env["DJANGO_LOG_SERVER_HOST"]["value"]
    assert host.split(".")[0] == service["metadata"]["name"]
    (port,) = service["spec"]["ports"]
    assert int(env["DJANGO_LOG_SERVER_PORT"]["value"]) == port["port"] == port["targetPort"]
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert env["CLICKHOUSE_DB"]["value"] == Settings().clickhouse_database
    assert "valueFrom" in env["CLICKHOUSE_PASSWORD"]
    # The patch the file's instructions apply sets what the Service expects.
    patch = re.search(r"-p '(\{.*\})'", (CVAT / "kubernetes-intake.yaml").read_text())
    assert patch
    data = yaml.safe_load(patch.group(1))["data"]
    assert int(data["EVENTPIPE_INTAKE_PORT"]) == port["targetPort"]


def test_readme_explains_the_replacement() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Replacing CVAT's Vector", 1)[1].split("\n## ", 1)[0]
    for name in ("docker-compose.eventpipe.yml", "cvat-helm-values.yaml", "kubernetes-intake.yaml"):
        assert name in section
