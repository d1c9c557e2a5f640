"""CVAT's current export flow: ``POST /api/events/export``, the requests API, the download.

``POST /api/events/export`` takes the filters of ``GET /api/events`` (same checks, defaults and
forced permissions) and answers ``202 {"rq_id"}``; ``GET /api/requests/{id}`` describes the
export as CVAT's ``Request`` (:mod:`ingest_gateway.request_model`); ``GET /api/requests`` lists
the caller's own, newest first, paginated as CVAT paginates; ``POST /api/requests/{id}/cancel``
stops a queued or running export; ``GET /api/events/download?rq_id=`` serves the finished file.

An ``rq_id`` is the export's ``query_id``: both flows read the same records, so an export started
either way can be followed either way. Only its owner ever sees a request; to anyone else an id
is the 404 of one never issued.

Cancelling deletes the request, as CVAT does (CVAT then answers 404 for it). CVAT refuses to
cancel a request that has started; here a running export can be cancelled too: its exporter
stops uploading at its next progress tick and publishes no file. Ended requests cannot be.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Final
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import Response

from eventpipe.export_records import (
    ExportState,
    ExportStatus,
    mark_cancelled,
    owned_statuses,
    utc_now,
)
from eventpipe.identity import User
from eventpipe.object_store import ObjectStore
from ingest_gateway.auth import authenticate
from ingest_gateway.errors import ApiError, struct_response
from ingest_gateway.export_params import parse_export_request
from ingest_gateway.exports import (
    download,
    export_store_of,
    no_such_export,
    own_export,
    start_export,
    store_errors,
)
from ingest_gateway.org_context import resolve_org_context
from ingest_gateway.params import parse_id, single
from ingest_gateway.request_model import (
    EVENTS,
    STATES,
    PaginatedRequestList,
    RequestAnswer,
    RequestOwner,
    RqId,
    describe,
)

DOWNLOAD_PATH: Final = "/api/events/download"
# CVAT's page size, and a bound on what one page may ask for.
PAGE_SIZE: Final = 10
MAX_PAGE_SIZE: Final = 1000
# CVAT's action of an export request, which the list filters by.
EXPORT: Final = "export"


async def create_export(request: Request) -> Response:
    user = await authenticate(request)
    now = utc_now()
    query = parse_export_request(request.query_params, now)
    context = await resolve_org_context(request, user)
    query_id = await start_export(request, user, context, query, now)
    return struct_response(202, RqId(rq_id=str(query_id)))


async def get_request(request: Request) -> Response:
    user = await authenticate(request)
    status = await _own_request(request, user)
    return struct_response(200, _describe(request, user, status))


async def cancel_request(request: Request) -> Response:
    user = await authenticate(request)
    status = await _own_request(request, user)
    if status.state.terminal:
        raise ApiError(
            400,
            f"only queued or started requests can be cancelled; this one is {STATES[status.state]}",
            field="id",
        )
    with store_errors():
        await asyncio.to_thread(mark_cancelled, export_store_of(request), status.query_id)
    return Response(status_code=200)


async def list_requests(request: Request) -> Response:
    user = await authenticate(request)
    params = request.query_params
    page = parse_id(single(params, "page"), "page", minimum=1) or 1
    page_size = parse_id(single(params, "page_size"), "page_size", minimum=1) or PAGE_SIZE
    page_size = min(page_size, MAX_PAGE_SIZE)
    wanted = single(params, "status")
    if wanted and wanted not in STATES.values():
        raise ApiError(
            400,
            f"status={wanted!r} is not one of {', '.join(STATES.values())}",
            field="status",
        )
    # Every request here is an export of events: another target or action matches none.
    other_kind = (single(params, "target") or EVENTS) != EVENTS or (
        single(params, "action") or EXPORT
    ) != EXPORT
    owned: list[ExportStatus] = []
    if not other_kind:
        with store_errors():
            owned = await asyncio.to_thread(_owned_by, export_store_of(request), user.id, utc_now())
    matching = [status for status in owned if not wanted or STATES[status.state] == wanted]
    first = (page - 1) * page_size
    if page > 1 and first >= len(matching):
        raise ApiError(404, f"page {page} is past the last page", field="page")
    answer = PaginatedRequestList(
        count=len(matching),
        next=_page_url(request.url, page + 1) if first + page_size < len(matching) else None,
        previous=_page_url(request.url, page - 1) if page > 1 else None,
        results=[_describe(request, user, s) for s in matching[first : first + page_size]],
    )
    return struct_response(200, answer)


async def download_result(request: Request) -> Response:
    """``result_url``: the finished export's CSV, as ``GET /api/events?action=download``."""
    user = await authenticate(request)
    raw = single(request.query_params, "rq_id")
    if not raw:
        raise ApiError(
            400, "rq_id is required: the id POST /api/events/export answered", field="rq_id"
        )
    status = await own_export(request, user, _export_id(raw, "rq_id"), utc_now(), "rq_id")
    if status.state is not ExportState.FINISHED:
        raise ApiError(
            400,
            f"the request is {STATES[status.state]}, not finished: poll GET /api/requests/{raw}",
            field="rq_id",
        )
    return await download(request, status, status.filename, "rq_id")


async def _own_request(request: Request, user: User) -> ExportStatus:
    raw = request.path_params["id"]
    return await own_export(request, user, _export_id(raw, "id"), utc_now(), "id")


def _export_id(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        # Not an id this service issues; the same 404 as any unknown one.
        raise no_such_export(field) from None


def _owned_by(store: ObjectStore, user_id: int, now: datetime) -> list[ExportStatus]:
    """The user's live exports, newest first."""
    owned = owned_statuses(store, user_id, now)
    return sorted(owned, key=lambda status: status.created_at, reverse=True)


def _describe(request: Request, user: User, status: ExportStatus) -> RequestAnswer:
    result_url = request.url.replace(
        path=DOWNLOAD_PATH, query=urlencode({"rq_id": str(status.query_id)})
    )
    return describe(status, RequestOwner(id=user.id, username=user.username), str(result_url))


def _page_url(url: URL, page: int) -> str:
    # DRF leaves the page parameter out for the first page.
    if page == 1:
        return str(url.remove_query_params("page"))
    return str(url.include_query_params(page=page))
