"""CVAT's current export flow: ``POST /api/events/export``, the requests API, the download.

``POST /api/events/export`` takes the filters of ``GET /api/events`` (same checks, defaults and
forced permissions) and answers ``202 {"rq_id"}``; ``GET /api/requests/{id}`` describes the
export as CVAT's ``Request`` (:mod:`ingest_gateway.exports.request_answer`);
``GET /api/requests`` lists the caller's own, filtered and ordered as CVAT's
(:mod:`ingest_gateway.exports.request_filters`) and paginated as CVAT paginates;
``POST /api/requests/{id}/cancel`` stops a queued or running export;
``GET /api/events/download?rq_id=`` serves the finished file.

An ``rq_id`` is CVAT's, ``action=export&target=events&id=<query_id>&user_id=<owner>``; the bare
``query_id`` it was before is accepted too (clients keep ids as they got them). Both flows read
the same records, so an export started either way can be followed either way. Who may see,
cancel or download a request is CVAT's rule (:mod:`ingest_gateway.identity.permissions`): its
owner or an admin, anyone else a 403; an id naming nothing is a 404 (a 400 on the download, as CVAT
answers). ``GET /api/requests`` lists the caller's own, as CVAT does even for admins.

Cancelling deletes the request, as CVAT does (CVAT then answers 404 for it). CVAT refuses to
cancel a request that has started; here a running export can be cancelled too: its exporter
stops uploading at its next progress tick and publishes no file. Ended requests cannot be.
"""

from __future__ import annotations

import asyncio
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
from ingest_gateway.errors import ApiError, struct_response
from ingest_gateway.exports.flow_steps import (
    download,
    export_store_of,
    live_export,
    no_such_export,
    start_export,
    store_errors,
)
from ingest_gateway.exports.params import parse_export_request
from ingest_gateway.exports.request_answer import (
    STATES,
    PaginatedRequestList,
    RequestAnswer,
    RequestOwner,
    RqId,
    describe,
    parse_rq_id,
    render_rq_id,
)
from ingest_gateway.exports.request_filters import ordered, request_filter
from ingest_gateway.identity.authentication import authenticate
from ingest_gateway.identity.org_context import resolve_org_context
from ingest_gateway.identity.permissions import Caller, RequestAction, check_request_access
from ingest_gateway.params import parse_id, single

DOWNLOAD_PATH: Final = "/api/events/download"
# CVAT's page size, and a bound on what one page may ask for.
PAGE_SIZE: Final = 10
MAX_PAGE_SIZE: Final = 1000


async def create_export(request: Request) -> Response:
    user = await authenticate(request)
    now = utc_now()
    query = parse_export_request(request.query_params, now)
    context = await resolve_org_context(request, user)
    query_id = await start_export(request, user, context, query, now)
    return struct_response(202, RqId(rq_id=render_rq_id(query_id, user.id)))


async def get_request(request: Request) -> Response:
    user = await authenticate(request)
    status = await _reachable(request, user, request.path_params["id"], "id", "view")
    return struct_response(200, _describe(request, status))


async def cancel_request(request: Request) -> Response:
    user = await authenticate(request)
    status = await _reachable(request, user, request.path_params["id"], "id", "cancel")
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
    wanted = request_filter(params)
    with store_errors():
        owned = await asyncio.to_thread(_owned_by, export_store_of(request), user.id, utc_now())
    matching = ordered([status for status in owned if wanted.matches(status)], params)
    first = (page - 1) * page_size
    if page > 1 and first >= len(matching):
        raise ApiError(404, f"page {page} is past the last page", field="page")
    answer = PaginatedRequestList(
        count=len(matching),
        next=_page_url(request.url, page + 1) if first + page_size < len(matching) else None,
        previous=_page_url(request.url, page - 1) if page > 1 else None,
        results=[_describe(request, s) for s in matching[first : first + page_size]],
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
    status = await _reachable(request, user, raw, "rq_id", "download")
    if status.state is not ExportState.FINISHED:
        raise ApiError(
            400,
            f"the request is {STATES[status.state]}, not finished: poll GET /api/requests/{raw}",
            field="rq_id",
        )
    return await download(request, status, status.filename, "rq_id")


async def _reachable(
    request: Request, user: User, raw: str, field: str, action: RequestAction
) -> ExportStatus:
    """The live export ``raw`` names, if ``user`` may do ``action`` to it."""
    named = parse_rq_id(raw)
    status = None if named is None else await live_export(request, named[0], utc_now())
    if status is None or named is None or named[1] not in (None, status.owner_user_id):
        if action == "download":
            raise ApiError(400, "no finished export has this rq_id", field=field)
        raise no_such_export(field)
    check_request_access(Caller.of(user), status.owner_user_id, action)
    return status


def _owned_by(store: ObjectStore, user_id: int, now: datetime) -> list[ExportStatus]:
    """The user's live exports."""
    return list(owned_statuses(store, user_id, now))


def _describe(request: Request, status: ExportStatus) -> RequestAnswer:
    rq_id = render_rq_id(status.query_id, status.owner_user_id)
    result_url = request.url.replace(path=DOWNLOAD_PATH, query=urlencode({"rq_id": rq_id}))
    owner = RequestOwner(id=status.owner_user_id, username=status.owner_username or "")
    return describe(status, owner, str(result_url))


def _page_url(url: URL, page: int) -> str:
    # DRF leaves the page parameter out for the first page.
    if page == 1:
        return str(url.remove_query_params("page"))
    return str(url.include_query_params(page=page))
