"""The gateway's Prometheus metrics (served on ``metrics_port`` by :func:`eventpipe.metrics.serve`).

Every metric is updated a fixed number of times per request, never per event: the ingest
endpoint's throughput is measured in thousands of requests per second.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

REQUESTS: Final = Counter(
    "eventpipe_http_requests", "HTTP requests answered", ["method", "route", "status"]
)
REQUEST_SECONDS: Final = Histogram(
    "eventpipe_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer",
    ["method", "route"],
)
EVENTS_ACCEPTED: Final = Counter(
    "eventpipe_events_accepted", "Events of POST /api/events requests answered 201"
)
EVENTS_REJECTED: Final = Counter(
    "eventpipe_events_rejected",
    "Events of decoded POST /api/events requests that were refused, by reason",
    ["reason"],
)
INTAKE_EVENTS: Final = Counter(
    "eventpipe_intake_events",
    "Events of batches CVAT's server posted to the intake, by outcome: accepted (answered 200:"
    " in Kafka or in the spool), dead_lettered (invalid or too large, on the dead-letter topic"
    " with the reason) or refused (503: the broker away and the spool full or unwritable)",
    ["outcome"],
)
INTAKE_SPOOLED: Final = Counter(
    "eventpipe_intake_spooled_events",
    "Events the intake wrote to its spool because the broker could not take them",
)
INTAKE_SPOOL_DRAINED: Final = Counter(
    "eventpipe_intake_spool_drained_events",
    "Events the intake sent from its spool to Kafka once the broker was back",
)
# The intake runs in one process of a gateway: "liveall" keeps that process's value.
INTAKE_SPOOL_BYTES: Final = Gauge(
    "eventpipe_intake_spool_bytes",
    "Bytes of batches in the intake's spool, waiting for the broker",
    multiprocess_mode="liveall",
)
INTAKE_SPOOL_BATCHES: Final = Gauge(
    "eventpipe_intake_spool_batches",
    "Batches in the intake's spool, waiting for the broker",
    multiprocess_mode="liveall",
)
INTAKE_SPOOL_LIMIT_BYTES: Final = Gauge(
    "eventpipe_intake_spool_limit_bytes",
    "The spool's bound (EVENTPIPE_INTAKE_SPOOL_MAX_BYTES): at it, the intake answers 503",
    multiprocess_mode="liveall",
)
# "livesum": with several gateway processes, the sum over those still running.
UNACKNOWLEDGED_BYTES: Final = Gauge(
    "eventpipe_producer_unacknowledged_bytes",
    "Bytes produced to Kafka and not yet acknowledged by the broker",
    multiprocess_mode="livesum",
)
UNACKNOWLEDGED_MESSAGES: Final = Gauge(
    "eventpipe_producer_unacknowledged_messages",
    "Messages produced to Kafka and not yet acknowledged by the broker",
    multiprocess_mode="livesum",
)

# The reason classes of refused events, by the status the request was answered with.
_REASONS: Final = {
    400: "invalid",
    413: "too_large",
    429: "rate_limited",
    500: "error",
    503: "unavailable",
}


def events_answered(count: int, status: int) -> None:
    """Count the ``count`` events of a decoded request by the status it was answered with."""
    if status == 201:
        EVENTS_ACCEPTED.inc(count)
    else:
        EVENTS_REJECTED.labels(_REASONS.get(status, "other")).inc(count)


def intake_events(outcome: str, count: int) -> None:
    INTAKE_EVENTS.labels(outcome).inc(count)


def intake_spooled(count: int) -> None:
    INTAKE_SPOOLED.inc(count)


def intake_drained(count: int) -> None:
    INTAKE_SPOOL_DRAINED.inc(count)


def intake_spool_state(size: int, batches: int, limit: int) -> None:
    INTAKE_SPOOL_BYTES.set(size)
    INTAKE_SPOOL_BATCHES.set(batches)
    INTAKE_SPOOL_LIMIT_BYTES.set(limit)


def produced(size: int) -> None:
    UNACKNOWLEDGED_BYTES.inc(size)
    UNACKNOWLEDGED_MESSAGES.inc()


def acknowledged(size: int) -> None:
    """The broker answered for a message (or it will never be sent)."""
    UNACKNOWLEDGED_BYTES.dec(size)
    UNACKNOWLEDGED_MESSAGES.dec()
