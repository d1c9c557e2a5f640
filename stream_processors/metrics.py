"""The processor's Prometheus metrics, served by the worker's metrics server."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

INSERT_ROWS: Final = Histogram(
    "eventpipe_insert_batch_rows",
    "Rows per ClickHouse insert",
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000),
)
INSERT_SECONDS: Final = Histogram(
    "eventpipe_insert_duration_seconds",
    "Time one ClickHouse insert took, successful or not",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ROWS_INSERTED: Final = Counter("eventpipe_rows_inserted", "Rows inserted into ClickHouse")
ROWS_ALREADY_STORED: Final = Counter(
    "eventpipe_rows_already_stored",
    "Rows of a redelivered message (or a resent CVAT batch) that the table held already",
)
INSERT_FAILURES: Final = Counter(
    "eventpipe_insert_failures",
    "ClickHouse inserts that failed (retried, or their refused messages dead-lettered)",
)
DEAD_LETTERS: Final = Counter(
    "eventpipe_dead_letters", "Messages parked on the dead-letter topic, by reason", ["reason"]
)
CONSUMER_LAG: Final = Gauge(
    "eventpipe_consumer_lag",
    "Messages of a partition that a consumer group has not committed yet",
    ["group", "topic", "partition"],
)
