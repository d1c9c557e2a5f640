"""The dashboards of deploy/grafana, checked without Grafana (it cannot run here).

Every ClickHouse panel query runs against a real engine holding the ``events`` table as the
processor fills it, in a database other than ``cvat`` that is the client's default (as the
provisioned datasource defaults to EVENTPIPE_CLICKHOUSE_DATABASE), after the substitutions
Grafana and the grafana-clickhouse-datasource plugin make: its macros (``$__timeFilter``,
``$__timeInterval``, ``$__fromTime``, ``$__toTime``) and the template variables. Every
Prometheus panel may only name metrics, and label names, that the processes' registries really
export.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from clickhouse_connect.driver.client import Client
from prometheus_client import REGISTRY

from tests.grafana_macros import expand_macros
from tests.integration.cvat_table_support import T0, cvat_client, populate

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
CLICKHOUSE = "grafana-clickhouse-datasource"
PROMETHEUS = "prometheus"
# The dashboard's time range and the interval Grafana would pick for it.
FROM, TO = T0 - timedelta(hours=1), T0 + timedelta(hours=3)
INTERVAL_SECONDS = 600
# Not the default ``cvat``: a query naming its database would miss the table.
DATABASE = "analytics"
# Where the gateway (and intake), the processor and the exporter define their metrics.
METRICS_MODULES = ("ingest_gateway.metrics", "stream_processors.metrics", "exporter.metrics")


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # inside a row


def targets(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard file, panel title, target) of every query of a datasource kind."""
    return [
        (path.name, panel["title"], target)
        for path in DASHBOARDS
        for panel in panels(load(path))
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == kind
    ]


def target_id(case: tuple[str, str, dict[str, Any]]) -> str:
    return f"{case[0]}:{case[1]}:{case[2]['refId']}"


def sql_string(value: str) -> str:
    """Grafana's ``${var:sqlstring}`` format: quoted, with quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def expand(sql: str, variables: dict[str, str]) -> str:
    """What reaches ClickHouse: the plugin's macros and Grafana's variables replaced."""
    sql = expand_macros(sql, FROM, TO, INTERVAL_SECONDS)
    for name, value in variables.items():
        sql = sql.replace(f"${{{name}:sqlstring}}", sql_string(value))
    # Only JSON paths (``'$.platform.name'``) may keep a dollar sign.
    assert not re.search(r"\$(?!\.)", sql), f"a macro or variable is left: {sql}"
    return sql


def variables_of(dashboard: str) -> list[str]:
    return [
        variable["name"]
        for variable in load(GRAFANA / "dashboards" / dashboard)["templating"]["list"]
    ]


@pytest.fixture(scope="module")
def cvat_events(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    from eventpipe.clickhouse import clickhouse_client
    from eventpipe.settings import Settings
    from stream_processors.migrations import apply_migrations

    path = tmp_path_factory.mktemp("grafana") / "clickhouse"
    settings = Settings(clickhouse_dsn=f"chdb://{path}", clickhouse_database=DATABASE)
    with clickhouse_client(settings) as writer:
        apply_migrations(writer)
        populate(writer)
    reader = cvat_client(path, DATABASE)
    yield reader
    reader.close()


def test_every_panel_uses_a_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "datasources.yaml").read_text()
    )["datasources"]
    uids = {source["uid"]: source["type"] for source in provisioned}
    assert set(uids.values()) == {CLICKHOUSE, PROMETHEUS}
    # The datasource's default database is the one the workers put the events table in.
    (clickhouse,) = [source for source in provisioned if source["type"] == CLICKHOUSE]
    assert clickhouse["jsonData"]["defaultDatabase"] == "$CLICKHOUSE_DATABASE"
    compose = yaml.safe_load((GRAFANA.parent / "docker-compose.yml").read_text())
    assert (
        compose["services"]["grafana"]["environment"]["CLICKHOUSE_DATABASE"]
        == compose["x-eventpipe-env"]["EVENTPIPE_CLICKHOUSE_DATABASE"]
    )
    assert DASHBOARDS, "no dashboards"
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            for target in panel.get("targets", []):
                source = target["datasource"]
                assert uids.get(source["uid"]) == source["type"], (path.name, panel["title"])


@pytest.mark.parametrize("case", targets(CLICKHOUSE), ids=target_id)
def test_clickhouse_panel_queries_run_and_filter_by_organization(
    cvat_events: Client, case: tuple[str, str, dict[str, Any]]
) -> None:
    dashboard, _title, target = case
    names = variables_of(dashboard)
    every_org = {name: "" for name in names}
    rows = cvat_events.query(expand(target["rawSql"], every_org)).result_rows
    assert rows and any(value not in (None, 0) for row in rows for value in row), rows
    if "org_id" in names:
        assert cvat_events.query(expand(target["rawSql"], {"org_id": "7"})).result_rows == rows
        other = cvat_events.query(expand(target["rawSql"], {"org_id": "8"})).result_rows
        assert other in ([], [(0,)]), other  # nothing, or a count of nothing


def test_working_time_panels_give_the_hours_of_cvats_events(cvat_events: Client) -> None:
    (per_user,) = [
        t for d, title, t in targets(CLICKHOUSE) if title == "Working time per user (hours)"
    ]
    rows = cvat_events.query(expand(per_user["rawSql"], {"org_id": ""})).result_rows
    # alice 60 s + 30 s, bob 120 s, in hours.
    assert sorted(rows) == [("alice", 0.025), ("bob", 0.033)]
    (exceptions,) = [t for d, title, t in targets(CLICKHOUSE) if title == "Exceptions"]
    rows = cvat_events.query(expand(exceptions["rawSql"], {"org_id": ""})).result_rows
    assert [(row[2], row[4]) for row in rows] == [("bob", "ValueError: bad frame")]


def exported() -> dict[str, set[str]]:
    """Every sample name the processes' metric registries export, with its label names."""
    # Importing a process's metrics module registers its metrics, as the process does.
    for module in METRICS_MODULES:
        importlib.import_module(module)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("eventpipe_"):
            continue
        # The label names a family declares, even before any sample exists.
        collector = (
            REGISTRY._names_to_collectors.get(family.name)
            or REGISTRY._names_to_collectors[family.name + "_total"]
        )
        labels = set(getattr(collector, "_labelnames", ()))
        for suffix in suffixes[family.type]:
            names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


@pytest.mark.parametrize("case", targets(PROMETHEUS), ids=target_id)
def test_prometheus_panels_name_metrics_the_processes_export(
    case: tuple[str, str, dict[str, Any]],
) -> None:
    expr = case[2]["expr"]
    known = exported()
    used = re.findall(r"\beventpipe_[a-z0-9_]+", expr)
    assert used, expr
    for name in used:
        assert name in known, f"{name} is not exported by any eventpipe process"
    for name, matchers in re.findall(r"\b(eventpipe_[a-z0-9_]+)\{([^}]*)\}", expr):
        for label in re.findall(r"(\w+)\s*=~?", matchers):
            assert label in known[name], f"{name} has no label {label}"
    for grouping in re.findall(r"\bby \(([^)]*)\)", expr):
        for label in (part.strip() for part in grouping.split(",")):
            assert any(label in labels for name, labels in known.items() if name in used), (
                f"no metric of {expr!r} has the label {label}"
            )


def test_prometheus_scrapes_every_process_that_serves_metrics() -> None:
    config = yaml.safe_load((GRAFANA.parent / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((GRAFANA.parent / "docker-compose.yml").read_text())["services"]
    scraped = {
        (name, sd["port"])
        for job in config["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
    }
    # Each on the metrics port it serves, never the gateway's API port.
    metrics_port = int(compose["gateway"]["environment"]["EVENTPIPE_METRICS_PORT"])
    assert scraped == {(name, metrics_port) for name in ("gateway", "processor", "exporter")}
    grafana = compose["grafana"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert CLICKHOUSE in grafana["environment"]["GF_INSTALL_PLUGINS"]
