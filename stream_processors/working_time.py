"""Working time: the ``send:working_time`` events CVAT derives from each accepted request.

The rules are CVAT's (DESIGN.md §2 "Working time"): time between consecutive events counts as work
when the gap is shorter than 100 s, ``change:frame`` events also count their own duration, and the
time is attributed to the (job, task, project) of the event *before* the gap. The totals go out as
one event per (job, task, project) bucket.

Times are summed in microseconds (exactly, as datetime arithmetic does) and cut to whole
milliseconds only at the end, like CVAT's ``timedelta // WORKING_TIME_RESOLUTION``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import orjson

from eventpipe.contracts import WORKING_TIME_SCOPE, Event, IngestMessage

# A gap this long or longer means the user stopped working.
GAP_THRESHOLD: Final = timedelta(seconds=100)
# Scopes whose events span ``duration`` ms instead of being instant.
COLLAPSED_SCOPES: Final = frozenset({"change:frame"})
# CVAT records derived events with ``record_server_event``, which stamps ``source="server"``.
DERIVED_SOURCE: Final = "server"

Ids = tuple[int | None, int | None, int | None]


def _ids(event: Event) -> Ids:
    return event.job_id, event.task_id, event.project_id


def _end(event: Event) -> datetime:
    if event.scope in COLLAPSED_SCOPES:
        return event.timestamp + timedelta(milliseconds=event.duration or 0)
    return event.timestamp


class _Bucket:
    __slots__ = ("timestamp", "total")

    def __init__(self, timestamp: datetime) -> None:
        self.timestamp = timestamp
        self.total = timedelta()


def working_time_events(message: IngestMessage) -> list[Event]:
    """The ``send:working_time`` events for one request, in the order their buckets opened."""
    events = message.events
    if not events:
        return []
    start = message.previous_event or events[0]
    prev_end = _end(start) if message.previous_event else start.timestamp
    prev_ids = _ids(start)

    buckets: dict[Ids, _Bucket] = {}
    for event in events:
        worked = timedelta()
        timestamp = event.timestamp
        if timestamp > prev_end:
            gap = timestamp - prev_end
            if gap < GAP_THRESHOLD:
                worked += gap
            prev_end = timestamp
        end = _end(event)
        if end > prev_end:
            worked += end - prev_end
            prev_end = end
        bucket = buckets.get(prev_ids)
        if bucket is None:
            bucket = buckets[prev_ids] = _Bucket(timestamp)
        bucket.total += worked
        prev_ids = _ids(event)

    identity = message.identity
    derived = []
    for (job_id, task_id, project_id), bucket in buckets.items():
        ms = bucket.total // timedelta(milliseconds=1)
        if ms <= 0:
            continue
        derived.append(
            Event(
                scope=WORKING_TIME_SCOPE,
                source=DERIVED_SOURCE,
                timestamp=bucket.timestamp,
                count=1,
                duration=ms,
                project_id=project_id,
                task_id=task_id,
                job_id=job_id,
                user_id=identity.user_id,
                user_name=identity.user_name,
                user_email=identity.user_email,
                org_id=identity.org_id,
                org_slug=identity.org_slug,
                payload=orjson.dumps({"working_time": ms}).decode(),
            )
        )
    return derived
