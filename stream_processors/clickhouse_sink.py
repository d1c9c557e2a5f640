"""Write columnar batches into the ``events`` table without blocking the event loop."""

from __future__ import annotations

import asyncio
import time

from clickhouse_connect.driver import options
from clickhouse_connect.driver.client import Client

from eventpipe.events_table import COLUMNS, TABLE
from stream_processors import metrics
from stream_processors.rows import Columns, row_count


class ClickHouseSink:
    def __init__(self, client: Client, table: str = TABLE) -> None:
        self.client = client
        self.table = table
        # clickhouse-connect imports pandas on its first insert, to ask whether the data is a
        # DataFrame: 0.4-0.9 s that would otherwise delay the first batch after every start.
        getattr(options, "pd", None)

    async def insert(self, columns: Columns) -> None:
        """Insert one batch, or raise what the client raised.

        The caller then retries the whole batch: rows that landed before the failure get the same
        key again, and the ReplacingMergeTree table collapses the copies.

        The client call blocks (an HTTP request, or the embedded engine's work), so it runs in a
        thread and the event loop keeps serving the Kafka consumer meanwhile.
        """
        rows = row_count(columns)
        started = time.perf_counter()
        try:
            await asyncio.to_thread(
                self.client.insert,
                self.table,
                columns,
                column_names=list(COLUMNS),
                column_oriented=True,
            )
        except Exception:
            metrics.INSERT_FAILURES.inc()
            raise
        finally:
            metrics.INSERT_SECONDS.observe(time.perf_counter() - started)
        metrics.INSERT_ROWS.observe(rows)
        metrics.ROWS_INSERTED.inc(rows)
