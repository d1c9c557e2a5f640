"""``cvat.events`` shared with CVAT, checked against CVAT's own files at run time.

- Its table: CVAT's ``components/analytics/clickhouse/init.py`` (which CVAT's backend runs at every
  start) and eventpipe's migrations run against one real engine in both orders; the table ends
  with CVAT's columns and types, keeps CVAT's history, and stores new events once.
- Its readers: CVAT's export (the ``_create_csv`` function of ``cvat/apps/events/export.py``, run
  as it is, with its Django settings and clickhouse-connect pointed at the engine) and every query
  of CVAT's four Grafana dashboards give the same answers on eventpipe's table, filled by the
  processor's code with a redelivered copy of every message, as on a table made by CVAT's
  ``init.py`` holding each event once. eventpipe's own export writes the same bytes as CVAT's.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import types
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from eventpipe.clickhouse import clickhouse_client
from eventpipe.contracts import ExportFilter, IngestMessage, IntakeMessage
from eventpipe.events_table import COLUMN_TYPES, CVAT_COLUMNS, EXPORT_COLUMNS
from eventpipe.settings import Settings
from eventpipe.stores.filesystem import FilesystemStore
from exporter.export_job import JobOptions, run_export
from stream_processors.clickhouse_sink import ClickHouseSink
from stream_processors.migrations import apply_migrations, table_columns
from stream_processors.rows import build_rows
from tests.conformance.cvat_source import cvat_file, run_cvat_init
from tests.grafana_macros import expand_macros
from tests.integration.cvat_table_support import (
    ALICE,
    BOB,
    SERVER_BATCH,
    T0,
    client_request,
)
from tests.messages import export_request

REFERENCE = "cvat_reference"
MESSAGES: list[IngestMessage | IntakeMessage] = [
    SERVER_BATCH,
    client_request(0, "Chrome", ALICE),
    client_request(62, "Firefox", BOB),
]
FROM, TO = T0 - timedelta(hours=1), T0 + timedelta(hours=3)
INTERVAL_SECONDS = 600


def column_layout(client: Client, database: str) -> list[tuple[str, str]]:
    """(name, type) of the columns ``SELECT *`` shows; 'Etc/UTC' and 'UTC' are one zone."""
    return [
        (name, kind.replace("'Etc/UTC'", "'UTC'"))
        for name, (kind, default) in table_columns(client, database, "events").items()
        if default != "MATERIALIZED"
    ]


def store_through_the_pipeline(client: Client, messages: list[Any]) -> int:
    sink = ClickHouseSink(client)
    return asyncio.run(sink.insert(build_rows(messages)))


@pytest.mark.parametrize("first", ["cvat", "eventpipe"])
def test_either_start_order_gives_cvats_table_with_history_and_each_event_once(
    first: str, tmp_path: Path
) -> None:
    with clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")) as client:
        if first == "cvat":
            run_cvat_init(client)
            # The history of an installation that ran CVAT's own collector.
            client.command(
                "INSERT INTO events (scope, source, timestamp, user_id, remote_addr)"
                " VALUES ('load:job', 'client', '2025-01-02 03:04:05.678', 3, '10.0.0.1')"
            )
        apply_migrations(client)
        # CVAT's backend runs init.py at every start: again and again, without error.
        run_cvat_init(client)
        stored = store_through_the_pipeline(client, MESSAGES)
        again = store_through_the_pipeline(client, MESSAGES)  # Kafka delivers them again
        rows = client.query("SELECT scope, user_id, remote_addr FROM events").result_rows
        run_cvat_init(client, REFERENCE)
        layout = column_layout(client, "cvat")
        assert layout == column_layout(client, REFERENCE)

    # The pipeline's contract of the table is CVAT's table as CVAT's init.py makes it.
    assert layout == [
        (name, COLUMN_TYPES[name].replace("'Etc/UTC'", "'UTC'")) for name in CVAT_COLUMNS
    ]
    assert again == 0 and len(rows) == stored + (first == "cvat")
    assert (("load:job", 3, "10.0.0.1") in rows) == (first == "cvat")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One engine: eventpipe's ``cvat.events`` filled by the processor's code, every message
    twice; and a table made by CVAT's init.py holding the same events once."""
    path = tmp_path_factory.mktemp("conformance") / "clickhouse"
    with clickhouse_client(Settings(clickhouse_dsn=f"chdb://{path}")) as client:
        apply_migrations(client)
        store_through_the_pipeline(client, MESSAGES)
        store_through_the_pipeline(client, MESSAGES)
        run_cvat_init(client, REFERENCE)
        client.command(
            f"INSERT INTO {REFERENCE}.events SETTINGS input_format_skip_unknown_fields = 1,"
            " date_time_input_format = 'best_effort' FORMAT JSONEachRow",
            # The rows one by one, as the processor reads them when it must drop some.
            data=b"".join(
                line for chunk in build_rows(MESSAGES).chunks for _, line in chunk.keyed_lines()
            ),
        )
    yield path


def reader(path: Path, database: str) -> Client:
    return clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database)


# --- CVAT's export -------------------------------------------------------------------------------


def cvats_create_csv(path: Path, database: str) -> types.FunctionType:
    """``_create_csv`` of CVAT's export.py, with what it imports from Django supplied."""
    source = cvat_file("cvat/apps/events/export.py").read_text()
    (function,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == "_create_csv"
    ]

    def get_client(**kwargs: Any) -> Client:
        # As CVAT connects (its database, tz_mode="schema"), to the engine of the test.
        return clickhouse_connect.get_client(
            dsn=f"chdb://{path}", database=kwargs["database"], tz_mode=kwargs["tz_mode"]
        )

    namespace: dict[str, Any] = {
        "csv": __import__("csv"),
        "clickhouse_connect": types.SimpleNamespace(get_client=get_client),
        "settings": types.SimpleNamespace(
            CLICKHOUSE={
                "events": {"HOST": "", "NAME": database, "PORT": 0, "USER": "", "PASSWORD": ""}
            }
        ),
        "log_exception": lambda logger: None,
        "slogger": types.SimpleNamespace(glob=None),
    }
    exec(compile(ast.Module(body=[function], type_ignores=[]), "export.py", "exec"), namespace)
    created: types.FunctionType = namespace["_create_csv"]
    return created


def cvat_export(path: Path, database: str, output: Path, **ids: int | None) -> bytes:
    params = {"from": FROM, "to": TO, "org_id": None, "project_id": None, "task_id": None}
    params |= {"job_id": None, "user_id": None} | ids
    cvats_create_csv(path, database)(params, str(output))
    return output.read_bytes()


@pytest.mark.parametrize("ids", [{}, {"user_id": 1}, {"job_id": 11}], ids=str)
def test_cvats_export_reads_the_same_file_from_both_tables_and_eventpipes_export_writes_it(
    engine: Path, tmp_path: Path, ids: dict[str, int]
) -> None:
    ours = cvat_export(engine, "cvat", tmp_path / "ours.csv", **ids)
    reference = cvat_export(engine, REFERENCE, tmp_path / "reference.csv", **ids)
    assert ours == reference
    assert ours.split(b"\r\n", 1)[0].decode().split(",") == list(EXPORT_COLUMNS)
    assert b"send:exception" not in ours and ours.count(b"\r\n") >= 2

    client = reader(engine, "cvat")
    store = FilesystemStore(tmp_path / "exports")
    request = export_request(ExportFilter(since=FROM, until=TO, **ids))
    try:
        status = run_export(request, client, store, JobOptions(ttl=timedelta(hours=1)))
    finally:
        client.close()
    assert status.object_key is not None, status.error
    assert store.get_bytes(status.object_key) == ours


# --- CVAT's dashboards ---------------------------------------------------------------------------

DASHBOARDS = ("all_events", "management", "monitoring", "users_exceptions")


def dashboard(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        cvat_file(f"components/analytics/grafana/dashboards/{name}.json").read_text()
    )
    return loaded


def panels(panel_list: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panel_list:
        yield panel
        yield from panels(panel.get("panels", []))


def queries(name: str) -> list[tuple[str, str]]:
    """(panel title and refId, SQL) of every ClickHouse query of a dashboard's panels."""
    return [
        (f"{panel.get('title', '')}:{target.get('refId', '')}", target["rawSql"])
        for panel in panels(dashboard(name)["panels"])
        for target in panel.get("targets", [])
        if target.get("datasource", {}).get("type") == "grafana-clickhouse-datasource"
    ]


def expanded(sql: str, reference: bool) -> str:
    """``sql`` with the datasource's macros replaced; a query naming CVAT's database reads the
    table it is compared with."""
    sql = expand_macros(sql, FROM, TO, INTERVAL_SECONDS)
    return sql.replace("cvat.events", f"{REFERENCE}.events") if reference else sql


def quoted(values: list[str]) -> str:
    return ",".join("'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'" for value in values)


def variables(name: str, client: Client, reference: bool) -> dict[str, str]:
    """Every template variable at "All", as Grafana substitutes it: its custom "all" value as it
    is written, else each value, quoted."""
    found: dict[str, str] = {}
    for variable in dashboard(name).get("templating", {}).get("list", []):
        all_value = variable.get("allValue") or ""
        if variable["type"] == "custom":
            values = [value.strip() for value in variable["query"].split(",")]
        else:
            sql = substitute(expanded(variable["query"], reference), found)
            values = [str(row[0]) for row in client.query(sql).result_rows]
        found[variable["name"]] = all_value or quoted(values)
    return found


def substitute(sql: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        sql = sql.replace(f"${{{name}}}", value)
    assert not re.search(r"\$(?![.\[])", sql), f"a macro or variable is left: {sql}"
    return sql


def answers(path: Path, database: str, name: str) -> dict[str, Any]:
    reference = database == REFERENCE
    client = reader(path, database)
    try:
        values = variables(name, client, reference)
        result: dict[str, Any] = {"variables": values}
        for title, sql in queries(name):
            rows = client.query(substitute(expanded(sql, reference), values)).result_rows
            result[title] = sorted(map(repr, rows))
    finally:
        client.close()
    return result


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_query_of_cvats_dashboards_answers_as_on_cvats_own_table(
    engine: Path, name: str
) -> None:
    ours, reference = answers(engine, "cvat", name), answers(engine, REFERENCE, name)
    assert len(ours) > 1, f"{name} has no ClickHouse query"
    assert ours == reference
    assert any(rows for title, rows in ours.items() if title != "variables")
