"""The body of ``POST /api/events``: read it within limits, decode and validate it, enrich it.

Decoding goes straight into the msgspec Structs of :mod:`eventpipe.contracts`; the only per-event
Python work left is what msgspec cannot express (allowed scopes, JSON inside ``payload``, the
trimming and refusals of CVAT's text fields) and the enrichment, which edits the decoded Structs
in place.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from msgspec import UNSET
from starlette.requests import ClientDisconnect, Request

from eventpipe.contracts import (
    CLIENT_SCOPES,
    CLIENT_SOURCE,
    ClientEvent,
    ClientEventsRequest,
    Identity,
    as_utc,
)
from eventpipe.cvat_json import EMPTY_PAYLOAD, client_payload
from eventpipe.events_table import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
from eventpipe.settings import LimitSettings, Settings
from ingest_gateway.errors import ApiError

_decoder: Final = msgspec.json.Decoder(ClientEventsRequest)

_OUT_OF_RANGE: Final = (
    "the timestamp after clock-skew correction is outside 1900-01-01..2299-12-31, "
    "which the events table cannot store"
)

# msgspec bounds how deeply it descends by the interpreter's recursion limit; no event nests
# anywhere near that deep.
TOO_DEEP: Final = "the body nests arrays or objects too deeply"

# msgspec errors end with the JSON path: "Expected `int`, got `str` - at `$.events[3].job_id`".
_ERROR_PATH: Final = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_MISSING_FIELD: Final = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_EVENT_INDEX: Final = re.compile(r"^events\[(?P<index>\d+)\]")


def require_json(content_type: str | None) -> None:
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise ApiError(
            415, f"send the body as application/json, not {media_type or 'no content type'}"
        )


async def read_body(request: Request, max_bytes: int, timeout_seconds: float) -> bytes:
    """The whole body, a 413 as soon as it is known to exceed ``max_bytes``, or a 408 when it has
    not all arrived within ``timeout_seconds``.

    The declared Content-Length is checked first; the count while streaming catches chunked
    uploads and lying headers. Neither uvicorn nor Starlette bounds the time a body may take, so
    without the timeout a client trickling bytes (slow loris) would hold a connection for ever.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(timeout_seconds):
            async for chunk in request.stream():
                received += len(chunk)
                if received > max_bytes:
                    raise _too_large(max_bytes)
                chunks.append(chunk)
    except ClientDisconnect:
        # Nobody will read the answer; this only keeps a traceback out of the logs.
        raise ApiError(400, "the client disconnected before sending the whole body") from None
    except TimeoutError:
        raise ApiError(
            408,
            f"the body did not arrive within {timeout_seconds:g} s",
            # The rest of the body may still trickle in: the connection cannot be reused.
            headers={"Connection": "close"},
        ) from None
    return b"".join(chunks)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413, f"the body exceeds {max_bytes} bytes; send the events in several smaller requests"
    )


def decode(body: bytes, max_events: int = Settings.max_events_per_request) -> ClientEventsRequest:
    """The typed request, or a 400 naming the offending field (and the event's index), or a 413
    naming ``events`` when there are more than ``max_events``."""
    try:
        request = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise validation_error(str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, TOO_DEEP) from None
    if len(request.events) > max_events:
        raise ApiError(
            413,
            f"{len(request.events)} events exceed the limit of {max_events} per request; "
            "send them in several requests",
            field="events",
        )
    for index, event in enumerate(request.events):
        if event.scope not in CLIENT_SCOPES:
            raise ApiError(
                400,
                f"event scope {event.scope!r} is not allowed from the client",
                field=f"events[{index}].scope",
                index=index,
            )
    return request


def validation_error(message: str) -> ApiError:
    """Turn a msgspec validation message into a 400 with a ``field`` like ``events[3].job_id``."""
    located = _ERROR_PATH.search(message)
    path = located["path"] if located else ""
    missing = _MISSING_FIELD.match(message)
    if missing:
        path = f"{path}.{missing['name']}" if path else missing["name"]
    event = _EVENT_INDEX.match(path)
    return ApiError(400, message, field=path or None, index=int(event["index"]) if event else None)


# Python's json module parses and writes payloads by recursion, bounded by the interpreter's
# recursion limit (1000 by default) less the stack already in use: deeper limits are cut to this.
MAX_PAYLOAD_DEPTH: Final = 254


@dataclass(frozen=True, slots=True)
class PayloadLimits:
    max_bytes: int
    max_depth: int

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> PayloadLimits:
        return cls(settings.max_payload_bytes, min(settings.max_payload_depth, MAX_PAYLOAD_DEPTH))


DEFAULT_PAYLOAD_LIMITS: Final = PayloadLimits.from_settings(Settings())


def enrich(
    request: ClientEventsRequest,
    identity: Identity,
    received_at: datetime,
    limits: PayloadLimits = DEFAULT_PAYLOAD_LIMITS,
) -> None:
    """Apply CVAT's server-side enrichment (docs/client-events.md) to the request, in place.

    Timestamps are shifted by the client's clock skew and made UTC, and must then be in the range
    of the events table; source, user and organization are stamped onto the events; ``obj_name``
    and ``obj_val`` are trimmed, and refused blank or holding NUL, as CVAT's serializer does;
    payloads are written as CVAT's serializer writes them, within ``limits``. ``previous_event``
    only serves the working time and, as in CVAT, gets its timestamp corrected and nothing else.
    """
    try:
        request.timestamp = as_utc(request.timestamp)
    except OverflowError:
        raise ApiError(400, "the timestamp is out of range", field="timestamp") from None
    skew = received_at - request.timestamp
    previous = request.previous_event
    if previous is not None:
        moment = _corrected(previous.timestamp, skew)
        if moment is None:
            raise _event_error(_OUT_OF_RANGE, "timestamp", "previous_event", 0)
        previous.timestamp = moment
    _enrich_events(request.events, identity, skew, limits)


def _corrected(moment: datetime, skew: timedelta) -> datetime | None:
    """``moment`` in UTC, shifted by ``skew``; None outside the events table's range."""
    try:
        if moment.tzinfo is not UTC:
            moment = as_utc(moment)
        moment += skew
    except OverflowError:
        return None
    return moment if EARLIEST_TIMESTAMP <= moment <= LATEST_TIMESTAMP else None


def _enrich_events(
    events: list[ClientEvent], identity: Identity, skew: timedelta, limits: PayloadLimits
) -> None:
    # The hot loop of the gateway (100 events a request): names are bound once, and one try
    # covers the loop; the failing event is found by its position afterwards.
    user_id, user_name, user_email = identity.user_id, identity.user_name, identity.user_email
    org_id, org_slug = identity.org_id, identity.org_slug
    corrected, trimmed, written_as_cvat = _corrected, _trimmed, client_payload
    max_bytes, max_depth = limits.max_bytes, limits.max_depth
    index = 0
    try:
        for index, event in enumerate(events):
            moment = corrected(event.timestamp, skew)
            if moment is None:
                raise _event_error(_OUT_OF_RANGE, "timestamp", "events", index)
            event.timestamp = moment
            # CVAT's serializer trims its text fields and refuses one left blank or holding a
            # NUL character.
            if isinstance(event.obj_name, str):
                event.obj_name = trimmed(event.obj_name, "obj_name", index)
            if isinstance(event.obj_val, str):
                event.obj_val = trimmed(event.obj_val, "obj_val", index)
            payload = event.payload
            if payload is UNSET:
                event.payload = EMPTY_PAYLOAD
            else:
                # Characters never outnumber UTF-8 bytes: a cheap refusal before parsing.
                if len(payload) > max_bytes:
                    raise _payload_too_large(max_bytes, index)
                stored, value = written_as_cvat(payload)
                # The stored form is ASCII: its length is its size in bytes.
                if len(stored) > max_bytes:
                    raise _payload_too_large(max_bytes, index)
                # Only a payload with that many brackets (each closed, so twice the bytes) can be
                # that deep: short ones are not even counted, and most are never walked.
                if (
                    len(stored) > 2 * max_depth
                    and stored.count("[") + stored.count("{") > max_depth
                    and nesting_depth(value) > max_depth
                ):
                    raise _payload_too_deep(max_depth, index)
                event.payload = stored
            event.source = CLIENT_SOURCE
            event.user_id = user_id
            event.user_name = user_name
            event.user_email = user_email
            event.org_id = org_id
            event.org_slug = org_slug
    except ValueError as exc:
        # Not JSON (json.JSONDecodeError), or an integer too long to read (Python's limit on
        # digits): CVAT answers the first with a 400 too, and fails on the second.
        raise _event_error(
            f"payload must be a string holding valid JSON: {exc}", "payload", "events", index
        ) from None
    except RecursionError:
        raise _payload_too_deep(max_depth, index) from None


def _trimmed(text: str, field: str, index: int) -> str:
    text = text.strip()
    if not text:
        raise _event_error(f"{field} may not be blank", field, "events", index)
    if "\x00" in text:
        raise _event_error(f"{field} may not hold NUL characters", field, "events", index)
    return text


def nesting_depth(value: object) -> int:
    """How many levels of arrays and objects ``value`` has (a scalar has 0), level by level so
    that no recursion limit is reached."""
    depth = 0
    level: list[object] = [value] if isinstance(value, dict | list) else []
    while level:
        depth += 1
        children: list[object] = []
        for container in level:
            assert isinstance(container, dict | list)
            items = container.values() if isinstance(container, dict) else container
            children.extend(item for item in items if isinstance(item, dict | list))
        level = children
    return depth


def _payload_too_large(max_bytes: int, index: int) -> ApiError:
    return _event_error(
        f"payload exceeds the limit of {max_bytes} bytes", "payload", "events", index
    )


def _payload_too_deep(max_depth: int, index: int) -> ApiError:
    return _event_error(
        f"payload nests deeper than the limit of {max_depth} levels", "payload", "events", index
    )


def _event_error(error: str, field: str, name: str, index: int) -> ApiError:
    if name == "previous_event":
        return ApiError(400, error, field=f"previous_event.{field}")
    return ApiError(400, error, field=f"{name}[{index}].{field}", index=index)
