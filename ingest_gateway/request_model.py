"""CVAT's ``Request`` model, as the requests API answers it about one export.

Field names, types and nullability follow the cvat-sdk models (``Request``,
``RequestDataOperation``, ``RequestOwner``, ``PaginatedRequestList``, ``RqId``), so the SDK
parses and type-checks every answer; :mod:`ingest_gateway.openapi` publishes these Structs as
the schema of those answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from eventpipe.contracts import ID_FILTERS
from eventpipe.export_records import ExportState, ExportStatus

# CVAT's request type and target of an events export.
EXPORT_EVENTS: Final = "export:events"
EVENTS: Final = "events"

RequestState = Literal["queued", "started", "finished", "failed"]
# CVAT says "started" for what the exporter's records call "running".
STATES: Final[dict[ExportState, RequestState]] = {
    ExportState.QUEUED: "queued",
    ExportState.RUNNING: "started",
    ExportState.FINISHED: "finished",
    ExportState.FAILED: "failed",
}


class RqId(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rq_id: str


class RequestOwner(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: int
    username: str


class RequestOperation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the request does, and the ids of the export's filter (after forced permissions).
    ``org_id`` is in the SDK's model; ``lightweight`` is sent by CVAT for every request, null
    where it does not apply, as here."""

    type: str
    target: str
    org_id: int | None = None
    project_id: int | None = None
    task_id: int | None = None
    job_id: int | None = None
    lightweight: bool | None = None


class RequestAnswer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    status: RequestState
    # The failure's reason; empty otherwise, as CVAT sends it.
    message: str
    operation: RequestOperation
    # 1 once finished; null while the total is unknown (exports are streamed without a count).
    progress: Annotated[float, msgspec.Meta(ge=0, le=1)] | None
    created_date: datetime
    started_date: datetime | None
    finished_date: datetime | None
    expiry_date: datetime | None
    owner: RequestOwner
    # The gateway's download of the file, once finished.
    result_url: str | None
    result_id: int | None


class PaginatedRequestList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    count: int
    next: str | None
    previous: str | None
    results: list[RequestAnswer]


# The filter's ids that CVAT's answer carries (it has no user filter).
_IDS: Final = [name for name in ID_FILTERS if name in RequestOperation.__struct_fields__]


def describe(status: ExportStatus, owner: RequestOwner, result_url: str) -> RequestAnswer:
    """The request ``status`` records, as CVAT describes it; ``result_url`` is used once it is
    finished."""
    finished = status.state is ExportState.FINISHED
    ids = {} if status.filter is None else {name: getattr(status.filter, name) for name in _IDS}
    return RequestAnswer(
        id=str(status.query_id),
        status=STATES[status.state],
        message=status.failure if status.state is ExportState.FAILED else "",
        operation=RequestOperation(type=EXPORT_EVENTS, target=EVENTS, **ids),
        progress=1.0 if finished else None,
        created_date=status.created_at,
        started_date=status.started_at,
        finished_date=status.ended_at,
        expiry_date=status.expires_at,
        owner=owner,
        result_url=result_url if finished else None,
        result_id=None,
    )
