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
from ingest_gateway.exports.params import export_parameters, parse_export_request
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
from ingest_gateway.exports.request_filters import (
    EMPTY_TEXT_FIELDS,
    ID_FIELDS,
    ordered,
    request_filter,
)
from ingest_gateway.identity.authentication import authenticate
from ingest_gateway.identity.org_context import resolve_org_context
from ingest_gateway.identity.org_selection import ORG_PARAMETERS
from ingest_gateway.identity.permissions import Caller, RequestAction, check_request_access
from ingest_gateway.operations import (
    Operation,
    documented,
    error_answer,
    error_answers,
    json_content,
    link,
    query_parameter,
)
from ingest_gateway.params import ID_SCHEMA, choice_schema, int_schema, parse_id, single

DOWNLOAD_PATH: Final = "/api/events/download"
# CVAT's page size, and a bound on what one page may ask for.
PAGE_SIZE: Final = 10
MAX_PAGE_SIZE: Final = 1000

_NO_REQUEST: Final = "no request with this id (or it expired or was cancelled)"
_ID_PARAMETER: Final = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "the request's rq_id",
}
# The request a 202 names is the one to follow.
_FOLLOW_REQUEST: Final = {
    "RetrieveRequest": link(
        "requests_retrieve", "id", "rq_id", "the export's progress, as CVAT's Request"
    ),
    "CancelRequest": link("requests_create_cancel", "id", "rq_id", "cancel the export"),
}


@documented(
    Operation(
        operation_id="events_create_export",
        summary="Start an export of the event log as CSV (CVAT's requests flow)",
        parameters=[
            *ORG_PARAMETERS,
            *export_parameters("default is the minimal time"),
            query_parameter(
                "location",
                choice_schema("local", "cloud_storage"),
                "only 'local': exports are kept in this service's own store (cloud_storage: 400)",
            ),
            query_parameter("cloud_storage_id", ID_SCHEMA, "not supported (400)"),
        ],
        responses={
            "202": {
                "description": "the export is queued: follow rq_id",
                "links": _FOLLOW_REQUEST,
                **json_content("RqId"),
            },
            **error_answers(400, 401, 403, 404, 429, 502, 503),
        },
        schemas=(RqId,),
    )
)
async def create_export(request: Request) -> Response:
    user = await authenticate(request)
    now = utc_now()
    query = parse_export_request(request.query_params, now)
    context = await resolve_org_context(request, user)
    query_id = await start_export(request, user, context, query, now)
    return struct_response(202, RqId(rq_id=render_rq_id(query_id, user.id)))


@documented(
    Operation(
        operation_id="requests_retrieve",
        summary="One export request, as CVAT's Request",
        parameters=[_ID_PARAMETER],
        responses={
            "200": {"description": "the request", **json_content("RequestAnswer")},
            "404": error_answer(404, _NO_REQUEST),
            **error_answers(401, 403, 429, 502, 503),
        },
        schemas=(RequestAnswer,),
    )
)
async def get_request(request: Request) -> Response:
    user = await authenticate(request)
    status = await _reachable(request, user, request.path_params["id"], "id", "view")
    return struct_response(200, _describe(request, status))


@documented(
    Operation(
        operation_id="requests_create_cancel",
        summary="Cancel a queued or started export; the request is deleted",
        parameters=[_ID_PARAMETER],
        responses={
            "200": {"description": "cancelled: the request is gone"},
            "400": error_answer(400, "the request has already ended"),
            "404": error_answer(404, _NO_REQUEST),
            **error_answers(401, 403, 429, 502, 503),
        },
    )
)
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


@documented(
    Operation(
        operation_id="requests_list",
        summary="The caller's export requests, newest first",
        parameters=[
            query_parameter("page", int_schema(1), "the page, from 1"),
            query_parameter("page_size", int_schema(1), "requests per page"),
            query_parameter("status", choice_schema(*STATES.values()), "only these"),
            query_parameter(
                "target", {"type": "string"}, "only this target (every request: 'events')"
            ),
            query_parameter(
                "action", {"type": "string"}, "only this action (every request: 'export')"
            ),
            *(
                query_parameter(
                    name, {"type": "string"}, "none of an events export's (any value: none)"
                )
                for name in EMPTY_TEXT_FIELDS
            ),
            *(
                query_parameter(name, ID_SCHEMA, "none of an events export's (any value: none)")
                for name in ID_FIELDS
            ),
            query_parameter(
                "filter", {"type": "string"}, "CVAT's JSON Logic over the fields above"
            ),
            query_parameter(
                "sort",
                {"type": "string"},
                "created_date, status or action, '-' first for descending (-created_date)",
            ),
        ],
        responses={
            "200": {"description": "one page of requests", **json_content("PaginatedRequestList")},
            "400": error_answer(400),
            "404": error_answer(404, "the page is past the last one"),
            **error_answers(401, 429, 502, 503),
        },
        schemas=(PaginatedRequestList,),
    )
)
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


@documented(
    Operation(
        operation_id="events_download_file",
        summary="Download a finished export (a request's result_url)",
        parameters=[
            {
                **query_parameter("rq_id", {"type": "string", "minLength": 1}, "the request's id"),
                "required": True,
            }
        ],
        responses={
            "200": {
                "description": "the CSV file, as an attachment",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            "400": error_answer(400, "no rq_id, an unknown one, or the request has not finished"),
            **error_answers(401, 403, 429, 502, 503),
        },
    )
)
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
