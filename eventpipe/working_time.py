"""Working time: the ``send:working_time`` events CVAT derives from each accepted request.

The rules are CVAT 2.73's (``compute_working_time_per_ids`` in cvat/apps/events/utils.py, and
``handle_client_events_push`` in handlers.py, which records the result): time between consecutive
events counts as work when the gap is shorter than 100 s, ``change:frame`` events also count
their own duration, and the time is attributed to the (job, task, project) of the event *before*
the gap. Every event of the request takes part, ``user:activity`` ones included (they exist for
this and are not stored). The totals go out as one event per (job, task, project) bucket whose
total is not zero, made as CVAT's server makes its own events.

Times are summed as integer microseconds (exact, as CVAT's datetime arithmetic is, and much faster
on this hot path) and cut to whole milliseconds only at the end, like CVAT's
``timedelta // WORKING_TIME_RESOLUTION``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, cast

from msgspec import UNSET

from eventpipe.contracts import WORKING_TIME_SCOPE, Event, IngestMessage
from eventpipe.cvat_json import server_payload
from eventpipe.timestamps import epoch_micros, epoch_micros_of

# A gap this long or longer (in microseconds: CVAT's MAX_EVENT_DURATION, 100 s) means the user
# stopped working.
GAP_THRESHOLD_US: Final = 100_000_000
# Scopes whose events span ``duration`` ms instead of being instant (CVAT's
# COMPRESSED_EVENT_SCOPES).
COMPRESSED_SCOPES: Final = frozenset({"change:frame"})
# CVAT records derived events with ``record_server_event``, which stamps ``source="server"``.
DERIVED_SOURCE: Final = "server"

Ids = tuple[int | None, int | None, int | None]


def _ids(raw: tuple[object, object, object]) -> Ids:
    # An id the client left out (a request's events as the gateway decoded them) is no id, as a
    # null one is: both fall into one bucket.
    return cast(Ids, tuple(None if value is UNSET else value for value in raw))


def _end_us(event: Event, start_us: int) -> int:
    # working_time_events has this inline in its loop, and keeps ids as the events hold them
    # until the end: the two calls per event took almost half its time (1.01 against 0.54 µs an
    # event, docs/benchmarks.md).
    if event.scope in COMPRESSED_SCOPES:
        return start_us + (event.duration or 0) * 1000
    return start_us


def working_time_events(
    message: IngestMessage, event_micros: Sequence[int] | None = None
) -> list[Event]:
    """The ``send:working_time`` events for one request, in the order their buckets opened.

    ``event_micros`` are the events' timestamps as :func:`epoch_micros`, for a caller that has
    them already.
    """
    events = message.events
    if not events:
        return []
    if event_micros is None:
        event_micros = epoch_micros_of([event.timestamp for event in events])
    previous = message.previous_event
    if previous is not None:
        prev_end = _end_us(previous, epoch_micros(previous.timestamp))
        prev_ids = (previous.job_id, previous.task_id, previous.project_id)
    else:
        first = events[0]
        prev_end = event_micros[0]
        prev_ids = (first.job_id, first.task_id, first.project_id)

    # Per bucket, keyed by the ids as the events hold them (the hot loop of the working time:
    # no call per event): the total in microseconds and the timestamp of the first event added.
    totals: dict[tuple[object, object, object], int] = {}
    opened: dict[tuple[object, object, object], datetime] = {}
    compressed = COMPRESSED_SCOPES
    for event, start in zip(events, event_micros, strict=True):
        worked = 0
        if start > prev_end:
            if start - prev_end < GAP_THRESHOLD_US:
                worked = start - prev_end
            prev_end = start
        # _end_us, inlined: only a compressed event ends after its start, and so after prev_end.
        if event.scope in compressed:
            end = start + (event.duration or 0) * 1000
            if end > prev_end:
                worked += end - prev_end
                prev_end = end
        if prev_ids in totals:
            totals[prev_ids] += worked
        else:
            totals[prev_ids] = worked
            opened[prev_ids] = event.timestamp
        prev_ids = (event.job_id, event.task_id, event.project_id)

    # Ids left out and null ones share a bucket, opened by the first event added to either.
    buckets: dict[Ids, int] = {}
    bucket_opened: dict[Ids, datetime] = {}
    for raw, total in totals.items():
        ids = _ids(raw)
        if ids in buckets:
            buckets[ids] += total
        else:
            buckets[ids] = total
            bucket_opened[ids] = opened[raw]

    identity = message.identity
    # CVAT's payload names the request the time came with (its id and the client's User-Agent);
    # the caller's address is the request's remote_addr, which every row of it carries.
    request = {"id": str(message.request_id), "user_agent": message.user_agent}
    derived = []
    for (job_id, task_id, project_id), total_us in buckets.items():
        # CVAT records every bucket whose time is not zero, even one under a millisecond, which
        # its resolution then writes as 0.
        if not total_us:
            continue
        ms = total_us // 1000
        derived.append(
            Event(
                scope=WORKING_TIME_SCOPE,
                source=DERIVED_SOURCE,
                timestamp=bucket_opened[(job_id, task_id, project_id)],
                count=1,
                duration=ms,
                project_id=project_id,
                task_id=task_id,
                job_id=job_id,
                user_id=identity.user_id,
                user_name=identity.user_name,
                # CVAT writes an empty email as null here (not on client events).
                user_email=identity.user_email or None,
                org_id=identity.org_id,
                org_slug=identity.org_slug,
                payload=server_payload({"working_time": ms, "request": request}),
            )
        )
    return derived
