"""deploy/ cannot run here (no Docker), so check what can be checked: the files parse, they name
only settings and commands the code has, and their pieces point at each other correctly."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from eventpipe.settings import ENV_PREFIX, SECRET_FIELDS, Settings, setting_names
from eventpipe_cli.cli import build_parser
from tests.integration.deploy_support import filled, load_all

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
KUBERNETES = DEPLOY / "kubernetes"
YAML_FILES = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
SECRET_SETTINGS = {ENV_PREFIX + name.upper() for name in SECRET_FIELDS} | {
    "EVENTPIPE_S3_ACCESS_KEY"
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


@pytest.fixture(scope="module")
def kube() -> dict[tuple[str, str], Any]:
    """Every Kubernetes object by (kind, name)."""
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in KUBERNETES.glob("*.yaml")
        if path.name != "kustomization.yaml"
        for doc in load_all(path)
    }


def eventpipe_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in compose.items() if s.get("image", "").startswith("eventpipe:")}


def deployments(kube: dict[tuple[str, str], Any]) -> dict[str, Any]:
    return {name: obj for (kind, name), obj in kube.items() if kind == "Deployment"}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


def dockerfile_cmd() -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile has no exec-form CMD"
    cmd: list[str] = yaml.safe_load(match.group(1))
    return cmd


def dockerfile_http_port() -> int:
    match = re.search(r"EVENTPIPE_HTTP_PORT=(\d+)", (DEPLOY / "Dockerfile").read_text())
    assert match, "the Dockerfile does not set EVENTPIPE_HTTP_PORT"
    return int(match.group(1))


def parse_eventpipe_command(command: list[str]) -> str:
    """Parse with the real CLI parser; return the subcommand (with --role for workers)."""
    assert command[0] == "eventpipe", command
    try:
        args = build_parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"`{shlex.join(command)}` is not a valid eventpipe command")
    return f"worker --role {args.role}" if args.command == "worker" else str(args.command)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_all(path)


def test_every_eventpipe_variable_in_deploy_is_a_real_setting() -> None:
    unknown = {
        f"{path.relative_to(DEPLOY)}: {name}"
        for path in DEPLOY.rglob("*")
        if path.is_file()
        for name in re.findall(r"EVENTPIPE_[A-Z0-9_]+", path.read_text())
        if name not in setting_names()
    }
    assert unknown == set()


def test_every_eventpipe_command_exists_and_each_role_runs_on_its_own(
    compose: dict[str, Any], kube: dict[tuple[str, str], Any]
) -> None:
    compose_roles = sorted(
        parse_eventpipe_command(s["command"]) for s in eventpipe_services(compose).values()
    )
    kube_roles = sorted(
        parse_eventpipe_command(c["command"])
        for d in deployments(kube).values()
        for c in containers(d)
    )
    expected = ["gateway", "worker --role exporter", "worker --role processor"]
    assert compose_roles == sorted([*expected, "migrate"])
    assert kube_roles == expected
    init_commands = [
        parse_eventpipe_command(c["command"])
        for d in deployments(kube).values()
        for c in d["spec"]["template"]["spec"].get("initContainers", [])
    ]
    assert init_commands == ["migrate"]
    assert parse_eventpipe_command(dockerfile_cmd()) == "gateway"


def test_compose_runs_real_engines_on_pinned_images(compose: dict[str, Any]) -> None:
    images = {name: s["image"] for name, s in compose.items()}
    assert images["kafka"].startswith("apache/kafka:")
    assert images["clickhouse"].startswith("clickhouse/clickhouse-server:")
    assert images["minio"].startswith("minio/minio:")
    third_party = [image for image in images.values() if not image.startswith("eventpipe:")]
    assert all(":" in i and not i.endswith(":latest") for i in third_party), third_party
    # KRaft: the node is its own controller, no ZooKeeper.
    kafka_env = compose["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert not any("zookeeper" in name for name in compose)


def test_compose_builds_the_eventpipe_image_from_the_deploy_dockerfile(
    compose: dict[str, Any],
) -> None:
    for name, service in eventpipe_services(compose).items():
        context = (COMPOSE_FILE.parent / service["build"]["context"]).resolve()
        assert (context / service["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile", name
        assert (context / "pyproject.toml").is_file(), name


def test_compose_dependencies_wait_for_health_or_completion(compose: dict[str, Any]) -> None:
    for name, service in compose.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in compose, f"{name} depends on unknown {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in compose[target], f"{name} waits on {target}'s health"
            else:
                assert rule["condition"] == "service_completed_successfully"
                # A one-shot job: restarting it would keep it from ever completing.
                assert "restart" not in compose[target], target
    assert compose["processor"]["depends_on"].keys() >= {"kafka", "clickhouse"}
    assert compose["gateway"]["depends_on"].keys() >= {"kafka"}


def test_compose_gateway_healthcheck_asks_the_ready_endpoint_on_the_served_port(
    compose: dict[str, Any],
) -> None:
    gateway = compose["gateway"]
    port = dockerfile_http_port()
    assert f"{port}:{port}" in gateway["ports"]
    probe = " ".join(gateway["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/health/ready" in probe
    assert gateway["environment"]["EVENTPIPE_DATA_DIR"] == "/var/lib/eventpipe"


def test_compose_settings_point_at_the_compose_engines(compose: dict[str, Any]) -> None:
    env = compose["processor"]["environment"]
    kafka_host = env["EVENTPIPE_KAFKA_BOOTSTRAP_SERVERS"]
    assert (
        f"PLAINTEXT://{kafka_host}" in compose["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    # Compose fills ${...} in from deploy/.env; any value will do to read the URL's shape.
    dsn = urlsplit(re.sub(r"\$\{[^}]*\}", "secret", env["EVENTPIPE_CLICKHOUSE_DSN"]))
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("http", "clickhouse", 8123)
    assert dsn.username == compose["clickhouse"]["environment"]["CLICKHOUSE_USER"]
    assert env["EVENTPIPE_S3_ENDPOINT"].split(":")[0] == "minio"
    bucket_job = " ".join(compose["minio-bucket"]["entrypoint"])
    assert f"local/{env['EVENTPIPE_S3_BUCKET']}" in bucket_job


def test_compose_takes_credentials_from_the_environment_not_literals(
    compose: dict[str, Any],
) -> None:
    for name, service in compose.items():
        for key, value in service.get("environment", {}).items():
            if key in SECRET_SETTINGS or "PASSWORD" in key:
                assert "${" in str(value), f"{name}: {key} holds a literal"


def test_kubernetes_keeps_credentials_in_secrets(kube: dict[tuple[str, str], Any]) -> None:
    assert not [name for kind, name in kube if kind == "Secret"], "no literal Secret objects"
    settings = kube[("ConfigMap", "eventpipe-settings")]["data"]
    assert set(settings) & SECRET_SETTINGS == set()
    readme = (DEPLOY / "README.md").read_text()
    for name, deployment in deployments(kube).items():
        for container in containers(deployment):
            for source in container["envFrom"]:
                if "secretRef" in source:
                    secret = source["secretRef"]["name"]
                    assert f"create secret generic {secret}" in readme, (name, secret)


def test_kubernetes_gateway_probes_and_service_reach_the_served_port(
    kube: dict[tuple[str, str], Any],
) -> None:
    gateway = kube[("Deployment", "eventpipe-gateway")]
    (container,) = containers(gateway)
    port = int(kube[("ConfigMap", "eventpipe-settings")]["data"]["EVENTPIPE_HTTP_PORT"])
    assert {"name": "http", "containerPort": port} in container["ports"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    service = kube[("Service", "eventpipe-gateway")]
    assert (
        service["spec"]["selector"].items()
        <= gateway["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_kubernetes_deployments_select_their_own_pods_and_mounts_exist(
    kube: dict[tuple[str, str], Any],
) -> None:
    for name, deployment in deployments(kube).items():
        spec = deployment["spec"]
        assert (
            spec["selector"]["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items()
        ), name
        volumes = {v["name"] for v in spec["template"]["spec"].get("volumes", [])}
        for container in containers(deployment):
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes, name
            sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
            assert "eventpipe-settings" in sources, name
        for volume in spec["template"]["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert ("PersistentVolumeClaim", claim) in kube, name


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = load_all(KUBERNETES / "kustomization.yaml")
    manifests = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_kubernetes_pods_are_scraped_where_they_serve_metrics(
    kube: dict[tuple[str, str], Any],
) -> None:
    settings = kube[("ConfigMap", "eventpipe-settings")]["data"]
    metrics_port = int(settings["EVENTPIPE_METRICS_PORT"])
    assert metrics_port != int(settings["EVENTPIPE_HTTP_PORT"])
    for name, deployment in deployments(kube).items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert int(annotations["prometheus.io/port"]) == metrics_port, name
        (container,) = containers(deployment)
        assert metrics_port in {p["containerPort"] for p in container["ports"]}, name


def test_the_gateway_service_does_not_expose_the_metrics(kube: dict[tuple[str, str], Any]) -> None:
    service = kube[("Service", "eventpipe-gateway")]
    (gateway,) = containers(kube[("Deployment", "eventpipe-gateway")])
    named = {port["name"]: port["containerPort"] for port in gateway["ports"]}
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]
    assert named["http"] != named["metrics"]


def test_compose_processes_expose_their_metrics_port_and_publish_only_the_api(
    compose: dict[str, Any],
) -> None:
    for name in ("gateway", "processor", "exporter"):
        port = compose[name]["environment"]["EVENTPIPE_METRICS_PORT"]
        assert compose[name]["expose"] == [port], name
    assert compose["gateway"]["ports"] == ["8080:8080"]


def test_compose_gateway_shares_postgresql_and_redis(compose: dict[str, Any]) -> None:
    env = compose["gateway"]["environment"]
    dsn = urlsplit(filled(env["EVENTPIPE_IDENTITY_DSN"]))
    postgres = compose["postgres"]["environment"]
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("postgresql", "postgres", 5432)
    assert (dsn.username, dsn.path) == (postgres["POSTGRES_USER"], f"/{postgres['POSTGRES_DB']}")
    redis_url = urlsplit(filled(env["EVENTPIPE_RATE_LIMIT_REDIS_URL"]))
    assert (redis_url.scheme, redis_url.hostname, redis_url.port) == ("redis", "redis", 6379)
    assert "--requirepass" in compose["redis"]["command"]
    # The schema exists before any gateway starts, made by the one-shot migration.
    migrate = compose["migrate-identity"]
    assert parse_eventpipe_command(migrate["command"]) == "migrate"
    assert migrate["environment"]["EVENTPIPE_IDENTITY_DSN"] == env["EVENTPIPE_IDENTITY_DSN"]
    assert compose["gateway"]["depends_on"]["migrate-identity"]["condition"] == (
        "service_completed_successfully"
    )
    assert compose["gateway"]["depends_on"].keys() >= {"redis", "migrate-identity"}
    # No state of its own but the intake's spool, on a volume where a recreated gateway finds it.
    spool = env["EVENTPIPE_INTAKE_SPOOL_DIR"]
    assert compose["gateway"]["volumes"] == [f"eventpipe_intake_spool:{spool}"]


def test_kubernetes_gateway_rolls_scales_and_survives_disruptions(
    kube: dict[tuple[str, str], Any],
) -> None:
    gateway = kube[("Deployment", "eventpipe-gateway")]
    spec = gateway["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # No ReadWriteOnce volume to pin it to one pod: identities are in PostgreSQL (or CVAT).
    assert not any("persistentVolumeClaim" in v for v in spec["template"]["spec"]["volumes"])
    assert not any(kind == "PersistentVolumeClaim" for kind, _ in kube)
    (container,) = containers(gateway)
    secrets = {s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s}
    assert "eventpipe-gateway-state" in secrets
    readme = (DEPLOY / "README.md").read_text()
    assert "EVENTPIPE_IDENTITY_DSN" in readme and "EVENTPIPE_RATE_LIMIT_REDIS_URL" in readme
    pods = spec["template"]["metadata"]["labels"]
    budget = kube[("PodDisruptionBudget", "eventpipe-gateway")]["spec"]
    assert budget["selector"]["matchLabels"].items() <= pods.items()
    assert budget["maxUnavailable"] < spec["replicas"]
    autoscaler = kube[("HorizontalPodAutoscaler", "eventpipe-gateway")]["spec"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "eventpipe-gateway",
    }
    assert 2 <= autoscaler["minReplicas"] <= spec["replicas"] <= autoscaler["maxReplicas"]


def test_kubernetes_workers_scale_on_the_lag_of_their_own_consumer_group(
    kube: dict[tuple[str, str], Any],
) -> None:
    config = kube[("ConfigMap", "eventpipe-settings")]["data"]
    settings = Settings.from_env(config)
    partitions = int(config["EVENTPIPE_TOPIC_PARTITIONS"])
    expected = {
        "eventpipe-processor": (settings.processor_group_id, settings.events_topic),
        "eventpipe-exporter": (settings.exporter_group_id, settings.exports_topic),
    }
    scaled = {name: obj for (kind, name), obj in kube.items() if kind == "ScaledObject"}
    assert set(scaled) == set(expected)
    for name, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        target = spec["scaleTargetRef"]["name"]
        assert target == name and ("Deployment", target) in kube
        # KEDA owns the replica count; a fixed one would fight it on every apply.
        assert "replicas" not in kube[("Deployment", target)]["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == partitions
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert (meta["consumerGroup"], meta["topic"]) == expected[name]
        assert meta["bootstrapServers"] == settings.kafka_bootstrap_servers
        assert meta["allowIdleConsumers"] == "false"
        # The process really runs in that group: the deployment's role consumes with it.
        (container,) = containers(kube[("Deployment", target)])
        role = parse_eventpipe_command(container["command"]).rsplit(" ", 1)[1]
        assert name == f"eventpipe-{role}"


def test_the_image_copies_every_package_the_install_includes() -> None:
    pyproject = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())
    included = {
        pattern.rstrip("*")
        for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (DEPLOY / "Dockerfile").read_text(), re.M))
    assert included - copied == set(), "the Dockerfile does not copy these packages"


def test_kubernetes_intakes_keep_their_spools_on_claims_of_their_own(
    kube: dict[tuple[str, str], Any],
) -> None:
    intake = kube[("StatefulSet", "eventpipe-intake")]
    spec = intake["spec"]
    (container,) = containers(intake)
    env = {item["name"]: item["value"] for item in container["env"]}
    assert parse_eventpipe_command(container["command"]) == "gateway"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["intake"] == int(env["EVENTPIPE_INTAKE_PORT"])
    # The spool is on the claim each replica gets, and outlives scaling down.
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["EVENTPIPE_INTAKE_SPOOL_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    # The claim holds the spool's bound.
    storage = claim["spec"]["resources"]["requests"]["storage"]
    assert int(storage.removesuffix("Gi")) * 2**30 > int(env["EVENTPIPE_INTAKE_SPOOL_MAX_BYTES"])
    # Ready (kept in its Service) by the intake's own probe, which holds while it can spool.
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "intake"}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert kube[("Service", spec["serviceName"])]["spec"]["clusterIP"] == "None"
    budget = kube[("PodDisruptionBudget", "eventpipe-intake")]["spec"]
    assert budget["maxUnavailable"] < spec["replicas"]
