"""CVAT's ``Request`` model, as the requests API answers it about one export.

Field names, types and nullability follow the cvat-sdk models (``Request``,
``RequestDataOperation``, ``RequestOwner``, ``PaginatedRequestList``, ``RqId``), so the SDK
parses and type-checks every answer; :mod:`ingest_gateway.openapi` publishes these Structs as
the schema of those answers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final, Literal
from urllib.parse import parse_qsl

import msgspec

from eventpipe.export_records import ExportState, ExportStatus

# CVAT's request type, action and target of an events export.
EXPORT_EVENTS: Final = "export:events"
EXPORT: Final = "export"
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
    """What the request does. CVAT fills the ids and ``format`` for exports of projects, tasks
    and jobs; for events, which its exporter records none of, they are null, and
    ``lightweight`` is sent null for every request where it does not apply."""

    type: str
    target: str
    org_id: int | None = None
    project_id: int | None = None
    task_id: int | None = None
    job_id: int | None = None
    format: str | None = None
    lightweight: bool | None = None


class RequestAnswer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: str
    status: RequestState
    # The failure's reason; empty otherwise, as CVAT sends it.
    message: str
    operation: RequestOperation
    # 1 once finished, 0 before (exports are streamed without a count to measure against).
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


def render_rq_id(query_id: uuid.UUID, owner_user_id: int) -> str:
    """CVAT's id of an events export request (its ``ExportRequestId.render()``)."""
    return f"action={EXPORT}&target={EVENTS}&id={query_id}&user_id={owner_user_id}"


def parse_rq_id(raw: str) -> tuple[uuid.UUID, int | None] | None:
    """The export ``raw`` names and the owner it names: CVAT's form, or the bare ``query_id``
    of requests made before this service used it (owner None). None when it names no events
    export. Clients treat the id as opaque, so both keep working."""
    if "=" not in raw:
        try:
            return uuid.UUID(raw), None
        except ValueError:
            return None
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    if (
        fields.keys() != {"action", "target", "id", "user_id"}
        or (fields["action"], fields["target"]) != (EXPORT, EVENTS)
        or not fields["user_id"].isdigit()
    ):
        return None
    try:
        return uuid.UUID(fields["id"]), int(fields["user_id"])
    except ValueError:
        return None


def describe(status: ExportStatus, owner: RequestOwner, result_url: str) -> RequestAnswer:
    """The request ``status`` records, as CVAT describes an events export: no project, task,
    job, org or format in its operation (CVAT's exporter records none for events), and progress
    0 until it has finished. ``result_url`` is used once it is finished."""
    finished = status.state is ExportState.FINISHED
    return RequestAnswer(
        id=render_rq_id(status.query_id, status.owner_user_id),
        status=STATES[status.state],
        message=status.failure if status.state is ExportState.FAILED else "",
        operation=RequestOperation(type=EXPORT_EVENTS, target=EVENTS),
        progress=1.0 if finished else 0.0,
        created_date=status.created_at,
        started_date=status.started_at,
        finished_date=status.ended_at,
        expiry_date=status.expires_at,
        owner=owner,
        result_url=result_url if finished else None,
        result_id=None,
    )
