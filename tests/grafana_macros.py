"""The macros of Grafana's ClickHouse datasource (grafana-clickhouse-datasource), replaced as the
plugin replaces them before a query reaches ClickHouse, for tests that run dashboards' queries."""

from __future__ import annotations

import re
from datetime import datetime


def expand_macros(sql: str, start: datetime, end: datetime, interval_seconds: int) -> str:
    """``sql`` for the dashboard time range ``start``..``end`` and the interval Grafana picks."""
    first, last = int(start.timestamp()), int(end.timestamp())
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m[1]} >= toDateTime({first}) AND {m[1]} <= toDateTime({last})",
        sql,
    )
    sql = re.sub(
        r"\$__timeInterval\((\w+)\)",
        lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL {interval_seconds} second)",
        sql,
    )
    sql = sql.replace("$__fromTime", f"toDateTime({first})")
    sql = sql.replace("$__toTime", f"toDateTime({last})")
    return sql.replace("$__interval_s", str(interval_seconds))
