"""The query of ``GET /api/events`` and ``POST /api/events/export``, checked before any export
is started or looked up.

CVAT's rules: ids are integers ≥ 0; ``from`` and ``to`` are ISO-8601 (a time without an offset
is UTC); without ``to``, until now; without ``from``, from the earliest time (CVAT 2.73's
``POST /api/events/export``: "Default is the minimal time"), except that the deprecated
``GET /api/events`` without either exports the last 30 days, as its original API page says.
CVAT starts at the creation of the job, task, project or organization filtered on; no event of
one is older, so the earliest time selects the same events without asking CVAT. An empty value
counts as not given (CVAT skips empty filters, and the cvat-sdk's polling loop sends
``query_id=`` on its first call), except ``action``, which is ``download`` or absent.
"""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from starlette.datastructures import QueryParams

from eventpipe.contracts import ID_FILTERS, EventFilter
from eventpipe.events_table import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
from ingest_gateway.errors import ApiError
from ingest_gateway.operations import query_parameter
from ingest_gateway.params import (
    DATE_SCHEMA,
    ID_SCHEMA,
    parse_date,
    parse_id,
    parse_uuid,
    single,
)

# The deprecated flow's window without from and to (its original API page).
DEPRECATED_FLOW_WINDOW: Final = timedelta(days=30)
MAX_FILENAME_CHARS: Final = 255
DOWNLOAD: Final = "download"
# CVAT's export locations; this service stores every export itself.
LOCAL: Final = "local"
CLOUD_STORAGE: Final = "cloud_storage"

# Unicode categories a file name never needs: controls, format characters (bidi overrides),
# surrogates, private use, unassigned; line and paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class ExportQuery:
    requested: EventFilter
    since: datetime
    until: datetime
    # Sanitized; None when the request names no file.
    filename: str | None
    download: bool = False
    # None starts a new export; otherwise the export to report on or serve.
    query_id: uuid.UUID | None = None


def parse_export_query(params: QueryParams, now: datetime) -> ExportQuery:
    """The query of ``GET /api/events``, or a 400 :class:`ApiError` naming the first bad
    parameter."""
    action = single(params, "action")
    if action is not None and action != DOWNLOAD:
        raise ApiError(
            400, f"unknown action {action!r}; the only action is 'download'", field="action"
        )
    if single(params, "cloud_storage_id") or single(params, "location") == CLOUD_STORAGE:
        # CVAT's own refusal: this flow never exported to a cloud storage.
        raise ApiError(
            400,
            "GET /api/events does not export to a cloud storage; use POST /api/events/export",
            field="cloud_storage_id" if single(params, "cloud_storage_id") else "location",
        )
    return dataclasses.replace(
        _filters(params, now, DEPRECATED_FLOW_WINDOW),
        download=action == DOWNLOAD,
        query_id=parse_uuid(single(params, "query_id"), "query_id"),
    )


def parse_export_request(params: QueryParams, now: datetime) -> ExportQuery:
    """The query of ``POST /api/events/export``: the same filters, and a ``location`` that can
    only be this service's own store (it keeps no registry of CVAT's cloud storages)."""
    location = single(params, "location")
    if location and location != LOCAL:
        raise ApiError(
            400,
            f"location={location!r} is not supported; exports are kept in this service's "
            f"own store (location={LOCAL!r}) and downloaded from result_url",
            field="location",
        )
    if single(params, "cloud_storage_id"):
        raise ApiError(
            400,
            "cloud_storage_id is not supported: this service exports to its own store",
            field="cloud_storage_id",
        )
    return _filters(params, now, None)


def _filters(params: QueryParams, now: datetime, default_window: timedelta | None) -> ExportQuery:
    since, until = time_window(
        parse_date(single(params, "from"), "from"),
        parse_date(single(params, "to"), "to"),
        now,
        default_window,
    )
    raw_filename = single(params, "filename")
    return ExportQuery(
        requested=EventFilter(
            **{name: parse_id(single(params, name), name) for name in ID_FILTERS}
        ),
        since=since,
        until=until,
        filename=sanitize_filename(raw_filename) if raw_filename else None,
    )


def time_window(
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    default_window: timedelta | None = None,
) -> tuple[datetime, datetime]:
    """The export's bounds; without either, the ``default_window`` up to now when there is one."""
    if since is not None and until is not None and since > until:
        raise ApiError(400, "'from' must not be after 'to'", field="from")
    if since is None and until is None and default_window is not None:
        since = now - default_window
    # Bounds outside the table's range select the same events, and ClickHouse cannot parse years
    # before 1000 as a query parameter, so they are clamped into it.
    return (
        max(since or EARLIEST_TIMESTAMP, EARLIEST_TIMESTAMP),
        min(until or now, LATEST_TIMESTAMP),
    )


def sanitize_filename(raw: str) -> str | None:
    """``raw`` without what could break out of a header or name another directory: control,
    line-separator and other invisible characters (CR, LF, U+2028, bidi overrides), quotes,
    slashes, and leading dots. None when nothing is left."""
    kept = "".join(
        ch for ch in raw if ch not in '"\\/' and unicodedata.category(ch) not in _INVISIBLE
    )
    return kept.lstrip(". ").rstrip()[:MAX_FILENAME_CHARS] or None


def content_disposition(filename: str) -> str:
    """An attachment header for a sanitized name: ASCII ``filename`` for every client, and the
    exact name as RFC 5987 ``filename*`` when it is not ASCII."""
    fallback = "".join(ch if ch.isascii() else "_" for ch in filename)
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def export_parameters(without_from: str) -> list[dict[str, Any]]:
    """The filters of an export, as the document names them; ``without_from`` says where an
    export starts without ``from`` (each flow's own default)."""
    return [
        *(
            query_parameter(name, ID_SCHEMA, f"only events with this {name}")
            for name in ("project_id", "task_id", "job_id", "user_id")
        ),
        query_parameter("from", DATE_SCHEMA, f"events at or after (ISO-8601); {without_from}"),
        query_parameter(
            "to", DATE_SCHEMA, "events at or before (ISO-8601; default now); not before from (400)"
        ),
        query_parameter("filename", {"type": "string"}, "the downloaded file's name"),
    ]
