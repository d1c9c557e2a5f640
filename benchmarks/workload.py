"""The benchmark's synthetic traffic: realistic CVAT annotation sessions, 100 events a request."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson

_SCOPES = (
    "change:frame",
    "draw:object",
    "resize:object",
    "drag:object",
    "click:element",
    "zoom:image",
    "save:job",
)


def request_body(request_index: int, events_per_request: int, rng: random.Random) -> bytes:
    """One ``POST /api/events`` body of about 320 bytes an event, like the CVAT web client's."""
    job_id = 1000 + request_index % 97
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=request_index)
    events = []
    for i in range(events_per_request):
        scope = _SCOPES[rng.randrange(len(_SCOPES))]
        events.append(
            {
                "scope": scope,
                "obj_name": "shape" if scope.endswith(":object") else None,
                "obj_id": rng.randrange(1, 10**6),
                "obj_val": None,
                "source": "client",
                "timestamp": (start + timedelta(milliseconds=40 * i)).isoformat(),
                "count": 1,
                "duration": rng.randrange(0, 500) if scope == "change:frame" else 0,
                "project_id": 7,
                "task_id": 100 + job_id // 10,
                "job_id": job_id,
                "payload": orjson.dumps(
                    {"frame": rng.randrange(0, 5000), "label": "car", "points": [1.5, 2.5, 30.0]}
                ).decode(),
            }
        )
    body = {
        "events": events,
        "previous_event": None,
        "timestamp": (start + timedelta(milliseconds=40 * events_per_request)).isoformat(),
    }
    return orjson.dumps(body)
