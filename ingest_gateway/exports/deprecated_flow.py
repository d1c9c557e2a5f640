"""``GET /api/events``: start a CSV export, report on it, or serve its file (CVAT's flow).

Without ``query_id`` the gateway records a new export and asks the exporters for it through
Kafka (202). With one of the caller's exports, it answers from the object store alone: 202 while
queued or running, 201 when the file is ready, 500 with the reason when it failed, and the file
itself for ``action=download``. An export exists only for the user who started it and until it
expires; a ``query_id`` naming none of the caller's (never issued, expired, someone else's)
starts a new export, as CVAT does: under that id when no record holds it, else under a new one
(ids are one space here, per user in CVAT), so ids cannot be probed.

Without ``from`` and ``to`` this flow exports the last 30 days, as its original API page says
(:mod:`ingest_gateway.exports.params`).

CVAT deprecated this flow for its requests API (:mod:`ingest_gateway.exports.requests_api`), which
starts, reads and serves the same exports through the same steps
(:mod:`ingest_gateway.exports.flow_steps`); like CVAT, the flow's
status answers carry an RFC 9745 ``Deprecation`` header with the date CVAT deprecated it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from eventpipe.export_records import (
    ExportState,
    ExportStatus,
    is_cancelled,
    read_status,
    utc_now,
)
from ingest_gateway.errors import JSON_MEDIA_TYPE, ApiError, struct_response
from ingest_gateway.exports.deprecated_answers import (
    PROGRESS_STATES,
    ExportFailed,
    ExportProgress,
    ExportStarted,
)
from ingest_gateway.exports.flow_steps import (
    download,
    export_store_of,
    live_export,
    start_export,
    store_errors,
)
from ingest_gateway.exports.jobs import presign_export
from ingest_gateway.exports.params import (
    DOWNLOAD,
    export_parameters,
    parse_export_query,
)
from ingest_gateway.identity.authentication import authenticate
from ingest_gateway.identity.org_context import resolve_org_context
from ingest_gateway.identity.org_selection import ORG_PARAMETERS
from ingest_gateway.operations import (
    REF,
    Operation,
    documented,
    error_answers,
    json_content,
    link,
    query_parameter,
)
from ingest_gateway.params import ID_SCHEMA, UUID_SCHEMA

# The longest validity S3 allows a presigned URL.
_MAX_PRESIGN: Final = timedelta(days=7)
# RFC 9745: "@" and the Unix time CVAT deprecated the flow, 2025-03-17T00:00:00Z.
DEPRECATION: Final = {"Deprecation": "@1742169600"}


_DEPRECATION_HEADER: Final[dict[str, Any]] = {
    "Deprecation": {
        "description": "RFC 9745: the date CVAT deprecated this flow, as '@' and Unix time",
        "schema": {"type": "string"},
    }
}
# The export a 202 names is the one to poll.
_POLL_EXPORT: Final = {
    "PollExport": link(
        "events_list",
        "query_id",
        "query_id",
        "poll the export, or download it with action=download once it is ready",
    )
}


@documented(
    Operation(
        operation_id="events_list",
        summary="Export the event log as CSV (asynchronous; deprecated by CVAT)",
        deprecated=True,
        parameters=[
            *ORG_PARAMETERS,
            *export_parameters(
                "without from and to, the last 30 days; with only to, everything before it"
            ),
            query_parameter(
                "action", {"type": "string", "enum": [DOWNLOAD]}, "serve the finished CSV"
            ),
            query_parameter(
                "query_id",
                UUID_SCHEMA,
                "the export to poll or download; empty starts one, and so does one naming none"
                " of the caller's exports (under that id when it is free, else under a new one)",
            ),
            # CVAT's deprecated flow never exported to a cloud storage, and says so.
            query_parameter(
                "location", {"type": "string"}, "cloud_storage is refused (400); others are ignored"
            ),
            query_parameter("cloud_storage_id", ID_SCHEMA, "refused (400)"),
        ],
        responses={
            "200": {
                "description": "the CSV file (action=download)",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            "201": {
                "description": "the export is ready",
                "headers": _DEPRECATION_HEADER,
                **json_content("ExportProgress"),
            },
            "202": {
                "description": "an export started (query_id) or still running",
                "headers": _DEPRECATION_HEADER,
                "links": _POLL_EXPORT,
                "content": {
                    JSON_MEDIA_TYPE: {
                        "schema": {
                            "oneOf": [
                                {"$ref": REF.format(name="ExportStarted")},
                                {"$ref": REF.format(name="ExportProgress")},
                            ]
                        }
                    }
                },
            },
            "500": {
                "description": "the export failed",
                "headers": _DEPRECATION_HEADER,
                **json_content("ExportFailed"),
            },
            **error_answers(400, 401, 403, 404, 429, 502, 503),
        },
        schemas=(ExportStarted, ExportProgress, ExportFailed),
    )
)
async def get_events(request: Request) -> Response:
    user = await authenticate(request)
    now = utc_now()
    query = parse_export_query(request.query_params, now)
    context = await resolve_org_context(request, user)
    status = await live_export(request, query.query_id, now) if query.query_id else None
    if status is not None and status.owner_user_id == user.id:
        if query.download and status.state is ExportState.FINISHED:
            return await download(request, status, query.filename or status.filename, "query_id")
        return await _report(request, status, now)
    if request.method == "HEAD":
        # Starlette answers HEAD on GET routes; a HEAD must not start an export.
        raise ApiError(405, "HEAD only reports on an export of yours: give its query_id")
    # No query_id, or one naming none of the caller's exports (never issued, expired, another
    # user's): CVAT starts an export under that id, its ids being the caller's own. Another
    # user's live export holds it; an expired record or a cancel marker may too.
    reused = (
        query.query_id
        if query.query_id and status is None and await _id_is_free(request, query.query_id)
        else None
    )
    query_id = await start_export(request, user, context, query, now, query_id=reused)
    return struct_response(202, ExportStarted(query_id=query_id), DEPRECATION)


async def _id_is_free(request: Request, query_id: uuid.UUID) -> bool:
    """Whether no record holds ``query_id`` and no cancel marker: ids are one space here, so an
    id someone else's export (or an expired one not yet swept) holds is never reused."""
    store = export_store_of(request)

    def free() -> bool:
        return read_status(store, query_id) is None and not is_cancelled(store, query_id)

    with store_errors():
        return await asyncio.to_thread(free)


async def _report(request: Request, status: ExportStatus, now: datetime) -> Response:
    if status.state is ExportState.FAILED:
        failed = ExportFailed(error=status.failure, query_id=status.query_id, status="failed")
        return struct_response(500, failed, DEPRECATION)
    progress = ExportProgress(
        query_id=status.query_id, status=PROGRESS_STATES[status.state], rows=status.rows
    )
    if status.state is not ExportState.FINISHED:
        return struct_response(202, progress, DEPRECATION)
    assert status.expires_at is not None  # every ended export has one
    finished = msgspec.structs.replace(
        progress,
        size=status.size,
        expires_at=status.expires_at,
        url=await _download_url(request, status, status.expires_at - now),
    )
    return struct_response(201, finished, DEPRECATION)


async def _download_url(request: Request, status: ExportStatus, valid_for: timedelta) -> str:
    """A presigned store URL, or this endpoint's download when the store makes none."""
    with store_errors():
        url = await presign_export(
            export_store_of(request),
            status,
            min(max(valid_for, timedelta(seconds=1)), _MAX_PRESIGN),
        )
    if url is not None:
        return url
    query = urlencode({"query_id": str(status.query_id), "action": DOWNLOAD})
    return str(request.url.replace(query=query))
