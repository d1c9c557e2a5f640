"""The export query: every value a parameter, the CVAT columns in order, the chosen options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from eventpipe.contracts import ExportFilter
from eventpipe.events_table import EXPORT_COLUMNS
from exporter.query import build_export_query, csv_header

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 1, 31, tzinfo=UTC)


def test_filter_values_travel_as_parameters_never_in_the_sql() -> None:
    query = build_export_query(
        ExportFilter(
            since=SINCE,
            until=UNTIL,
            org_id=987651,
            user_id=987652,
            project_id=987653,
            task_id=987654,
            job_id=987655,
        ),
        neutralize_formulas=True,
    )
    for name, value in [
        ("org_id", 987651),
        ("user_id", 987652),
        ("project_id", 987653),
        ("task_id", 987654),
        ("job_id", 987655),
    ]:
        assert query.parameters[name] == value
        assert f"{name} = {{{name}:UInt64}}" in query.sql
        assert str(value) not in query.sql
    assert query.parameters["since"] == SINCE
    assert "2026" not in query.sql


def test_unset_ids_do_not_filter() -> None:
    query = build_export_query(ExportFilter(since=SINCE, until=UNTIL), neutralize_formulas=False)
    assert set(query.parameters) == {"since", "until"}
    assert "UInt64" not in query.sql


def test_times_are_passed_in_utc() -> None:
    local = SINCE.astimezone(timezone(timedelta(hours=3)))
    query = build_export_query(ExportFilter(since=local, until=UNTIL), neutralize_formulas=False)
    assert query.parameters["since"].utcoffset() == timedelta(0)
    assert query.parameters["since"] == SINCE


def test_max_threads_is_only_set_when_asked() -> None:
    export_filter = ExportFilter(since=SINCE, until=UNTIL)
    assert "max_threads" not in build_export_query(export_filter, neutralize_formulas=True).sql
    assert (
        "max_threads = 1"
        in build_export_query(export_filter, neutralize_formulas=True, max_threads=1).sql
    )


def test_header_is_the_cvat_columns_in_order() -> None:
    assert csv_header() == (",".join(EXPORT_COLUMNS) + "\r\n").encode()
