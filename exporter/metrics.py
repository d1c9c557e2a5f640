"""The exporter's Prometheus metrics, served by the worker's metrics server."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

EXPORT_SECONDS: Final = Histogram(
    "eventpipe_export_duration_seconds",
    "Time an export ran, by outcome: finished, failed, cancelled (handed back at shutdown), "
    "withdrawn (cancelled by its owner) or unrecorded (the object store refused its status)",
    ["outcome"],
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800),
)
EXPORTS_RUNNING: Final = Gauge("eventpipe_exports_running", "Exports running in this worker")
UNREADABLE_REQUESTS: Final = Counter(
    "eventpipe_export_requests_unreadable",
    "Export requests skipped because no exporter can read them, by reason: empty, bad-json, "
    "wrong-schema or unknown-version",
    ["reason"],
)
