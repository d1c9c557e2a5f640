"""Turn decoded ingest messages into columnar data for the ``events`` table.

This is the processor's hot path, so it leans on C-speed building blocks:
``msgspec.structs.astuple`` turns an event into a row (the :class:`~eventpipe.contracts.Event`
fields are declared in the order of :data:`~eventpipe.events_table.CVAT_COLUMNS`), ``zip(*rows)``
transposes rows into columns, and only the few columns that need it get a second pass.

Each row is keyed by ``(request_id, event_seq)``: the client events of a request take
``event_seq`` 0..n-1 in the order they were sent and its working-time events n, n+1, ... in the
order of their buckets. Both are deterministic, so a redelivered message yields identical rows,
which the ReplacingMergeTree table collapses.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any, Final

from msgspec.structs import astuple

from eventpipe.contracts import IngestMessage
from eventpipe.events_table import COLUMNS
from stream_processors.timestamps import epoch_micros, epoch_micros_of
from stream_processors.working_time import working_time_events

_TIMESTAMP: Final = COLUMNS.index("timestamp")
_SOURCE: Final = COLUMNS.index("source")
_DURATION: Final = COLUMNS.index("duration")

Columns = list[list[Any]]


def _add_rows(
    message: IngestMessage, rows: list[tuple[Any, ...]], timestamps_ms: list[int]
) -> None:
    """Append the rows of one request and their timestamps in ms (the table's DateTime64(3)).

    Timestamps go to the client as integers: it then neither converts each datetime itself nor
    reads a datetime without an offset in the machine's local zone.
    """
    request_id = message.request_id
    received_at = epoch_micros(message.received_at) // 1000
    events = message.events
    micros = epoch_micros_of([event.timestamp for event in events])
    rows += [(*astuple(event), request_id, seq, received_at) for seq, event in enumerate(events)]
    timestamps_ms += [us // 1000 for us in micros]

    derived = working_time_events(message, micros)
    rows += [
        (*astuple(event), request_id, seq, received_at)
        for seq, event in enumerate(derived, start=len(events))
    ]
    timestamps_ms += [epoch_micros(event.timestamp) // 1000 for event in derived]


def build_columns(messages: Sequence[IngestMessage]) -> Columns:
    """One list per column of ``events`` (in :data:`COLUMNS` order) for all rows of ``messages``."""
    # A batch allocates a tuple per row and creates no reference cycles; left on, the cyclic
    # collector would walk the growing batch again and again and cost more than the work itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _columns(messages)
    finally:
        if collecting:
            gc.enable()


def _columns(messages: Sequence[IngestMessage]) -> Columns:
    rows: list[tuple[Any, ...]] = []
    timestamps_ms: list[int] = []
    for message in messages:
        _add_rows(message, rows, timestamps_ms)
    if not rows:
        return [[] for _ in COLUMNS]
    columns = [list(column) for column in zip(*rows, strict=True)]
    columns[_TIMESTAMP] = timestamps_ms
    # Both columns are non-nullable in the table; a null must not make the whole batch fail.
    columns[_SOURCE] = [source or "" for source in columns[_SOURCE]]
    columns[_DURATION] = [duration or 0 for duration in columns[_DURATION]]
    return columns


def row_count(columns: Columns) -> int:
    return len(columns[0])
