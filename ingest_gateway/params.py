"""Parsers of request parameters (query and headers), one per kind of value, each beside the
OpenAPI schema that describes what it accepts.

Every value a request names is bounded here, where it is read, before any store (SQLite,
ClickHouse, the object store) sees it: a refused value is a 400 naming the parameter, never an
error deeper down. As CVAT does, an empty value counts as not given (the cvat-sdk sends
``query_id=`` and ``org=``), so each parser answers None for it and each schema admits ``""``.
Values are read with :func:`single`: no parameter takes a list, so one sent twice is refused
rather than read as either of its values.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Final

from starlette.datastructures import Headers, QueryParams

from eventpipe.contracts import as_utc
from eventpipe.identity import SLUG_PATTERN
from ingest_gateway.errors import ApiError

# Ids are UInt64 columns in ClickHouse and INTEGER (int64) in SQLite: the smaller bound serves both.
MAX_ID: Final = 2**63 - 1

_DIGITS: Final = re.compile(r"[0-9]+")
_SLUG: Final = re.compile(SLUG_PATTERN)
_EMPTY: Final[dict[str, Any]] = {"type": "string", "maxLength": 0}


def int_schema(minimum: int) -> dict[str, Any]:
    """What :func:`parse_id` accepts with this ``minimum``."""
    return {"anyOf": [{"type": "integer", "minimum": minimum, "maximum": MAX_ID}, _EMPTY]}


ID_SCHEMA: Final = int_schema(0)


def choice_schema(*values: str) -> dict[str, Any]:
    """One of ``values``, or empty (not given)."""
    return {"type": "string", "enum": [*values, ""]}


DATE_SCHEMA: Final[dict[str, Any]] = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
        _EMPTY,
    ]
}
UUID_SCHEMA: Final[dict[str, Any]] = {"anyOf": [{"type": "string", "format": "uuid"}, _EMPTY]}
SLUG_SCHEMA: Final[dict[str, Any]] = {"type": "string", "pattern": f"^({SLUG_PATTERN})?$"}


def single(values: QueryParams | Headers, name: str) -> str | None:
    """The value of the query parameter or header ``name``, None when absent, a 400 when it is
    sent more than once."""
    found = values.getlist(name)
    if len(found) > 1:
        raise ApiError(400, f"{name} is sent {len(found)} times; send it once", field=name)
    return found[0] if found else None


def parse_id(raw: str | None, name: str, minimum: int = 0) -> int | None:
    """A decimal integer in ``minimum``..2**63-1 (ids, and counts such as pages)."""
    if not raw:
        return None
    # int() would also take "+5", " 5", "1_0" and non-ASCII digits, and refuses over 4300 digits
    # with an error of its own; MAX_ID has 19.
    if len(raw) > 19 or not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= MAX_ID:
        raise ApiError(
            400, f"{name}={raw[:40]!r} is not an integer in {minimum}..{MAX_ID}", field=name
        )
    return int(raw)


def parse_date(raw: str | None, name: str) -> datetime | None:
    """An ISO-8601 date or date and time, in UTC (a time without an offset is UTC)."""
    if not raw:
        return None
    try:
        return as_utc(datetime.fromisoformat(raw))
    # OverflowError: a time at the edge of year 1 or 9999 whose offset moves it out of range.
    except (ValueError, OverflowError):
        raise ApiError(
            400, f"{name}={raw!r} is not an ISO-8601 date or date and time", field=name
        ) from None


def parse_uuid(raw: str | None, name: str) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(400, f"{name}={raw!r} is not a UUID", field=name) from None


def parse_slug(raw: str | None, name: str) -> str | None:
    """An organization slug: what no organization can be called is refused before a lookup."""
    if not raw:
        return None
    if not _SLUG.fullmatch(raw):
        raise ApiError(
            400,
            f"{name}={raw[:40]!r} is not an organization slug (1-16 letters, digits, - and _)",
            field=name,
        )
    return raw
