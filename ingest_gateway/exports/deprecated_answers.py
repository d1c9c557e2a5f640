"""The answers of the export flow of ``GET /api/events``: what the handlers send and what the
OpenAPI document declares (:mod:`ingest_gateway.openapi`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final, Literal

import msgspec

from eventpipe.export_records import ExportState

ProgressState = Literal["queued", "running", "finished"]
PROGRESS_STATES: Final[dict[ExportState, ProgressState]] = {
    ExportState.QUEUED: "queued",
    ExportState.RUNNING: "running",
    ExportState.FINISHED: "finished",
}


class ExportStarted(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query_id: uuid.UUID


class ExportProgress(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """202 while queued or running; 201 with the file's size, expiry and URL when finished."""

    query_id: uuid.UUID
    status: ProgressState
    # Rows written so far; always sent.
    rows: int
    size: int | None = None
    expires_at: datetime | None = None
    url: str | None = None


class ExportFailed(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    error: str
    query_id: uuid.UUID
    status: Literal["failed"]
