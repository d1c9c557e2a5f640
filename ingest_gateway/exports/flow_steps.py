"""The steps both export flows take for a request: find the export store, start an export the
caller may ask for, read an export's live record, serve its file, and the answers of a store
that fails or holds no such export. The deprecated ``GET /api/events``
(:mod:`ingest_gateway.exports.deprecated_flow`) and CVAT's requests API
(:mod:`ingest_gateway.exports.requests_api`) both answer through them, so an export started one
way can be followed the other.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from eventpipe.contracts import ExportFilter
from eventpipe.export_records import ExportStatus
from eventpipe.identity import User
from eventpipe.settings import Settings
from eventpipe.stores import STORE_ERRORS, ObjectNotFound, ObjectStore
from ingest_gateway.errors import ApiError
from ingest_gateway.exports.jobs import (
    default_export_filename,
    get_export_status,
    open_export_download,
    submit_export,
)
from ingest_gateway.exports.params import (
    ExportQuery,
    content_disposition,
)
from ingest_gateway.exports.store import ExportStoreHandle
from ingest_gateway.identity.org_selection import OrgContext
from ingest_gateway.identity.permissions import Caller, authorize_export
from ingest_gateway.producer import producer_of, unavailable

log = logging.getLogger(__name__)


def export_store_of(request: Request) -> ObjectStore:
    """The export store, or a 503 while the gateway cannot reach it yet."""
    handle: ExportStoreHandle = request.app.state.export_store
    return handle.get()


async def start_export(
    request: Request,
    user: User,
    context: OrgContext,
    query: ExportQuery,
    now: datetime,
    *,
    query_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Check the caller may export what ``query`` asks for, then record and queue the export
    (under ``query_id``, else a new id)."""
    allowed = authorize_export(Caller.of(user, context), query.requested)
    export_filter = ExportFilter(
        since=query.since, until=query.until, **msgspec.structs.asdict(allowed)
    )
    settings: Settings = request.app.state.settings
    with store_errors():
        return await submit_export(
            settings,
            export_store_of(request),
            producer_of(request),
            user.id,
            export_filter,
            query.filename or default_export_filename(now),
            owner_username=user.username,
            query_id=query_id,
        )


async def live_export(request: Request, query_id: uuid.UUID, now: datetime) -> ExportStatus | None:
    """The export's record while it lives, whoever owns it."""
    with store_errors():
        return await get_export_status(export_store_of(request), query_id, now)


async def download(request: Request, status: ExportStatus, filename: str, field: str) -> Response:
    """The finished export's CSV as an attachment named ``filename``; a 404 naming ``field``
    if it expired meanwhile."""
    with store_errors():
        try:
            chunks = await open_export_download(export_store_of(request), status)
        except ObjectNotFound:
            # Swept between reading the record and opening the file: it just expired.
            raise no_such_export(field) from None
    return StreamingResponse(
        chunks,
        media_type="text/csv",
        headers={
            "Content-Disposition": content_disposition(filename),
            "Content-Length": str(status.size),
        },
    )


def no_such_export(field: str) -> ApiError:
    return ApiError(
        404,
        f"you have no export with this {field} (exports expire a while after they end)",
        field=field,
    )


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except STORE_ERRORS as exc:
        log.warning("the export store failed: %r", exc)
        raise unavailable("the export storage is unavailable; retry shortly") from None
