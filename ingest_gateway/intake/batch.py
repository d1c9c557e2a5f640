"""A batch from CVAT's server: a JSON array of event objects, split into valid and invalid events.

Each element is decoded on its own, so one bad event costs only itself: the valid ones are stored,
each invalid one is reported with the reason. Decoding is lax where CVAT's renderings need it:
``timestamp`` as a string of Unix seconds (``str(datetime.timestamp())``) or ISO-8601, ids as
numbers or numeric strings, ``payload`` as a JSON string or an object (stored as CVAT's server
writes one).
Keys the table does not hold (``request_id``, ...) are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

import msgspec
import orjson

from eventpipe.contracts import ServerEvent, as_utc
from eventpipe.cvat_json import server_payload
from eventpipe.events_table import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
from ingest_gateway.errors import ApiError
from ingest_gateway.events.body import TOO_DEEP

_batch_decoder: Final = msgspec.json.Decoder(list[msgspec.Raw])
_event_decoder: Final = msgspec.json.Decoder(ServerEvent, strict=False)
# The common case, a batch of valid events, in one pass.
_events_decoder: Final = msgspec.json.Decoder(list[ServerEvent], strict=False)


@dataclass(frozen=True)
class InvalidEvent:
    """An element of the batch that cannot be stored: its bytes as sent (or, in a batch only
    Python's parser reads, the same JSON value written again), and why."""

    index: int
    raw: bytes
    reason: str


@dataclass
class IntakeBatch:
    valid: list[ServerEvent] = field(default_factory=list)
    invalid: list[InvalidEvent] = field(default_factory=list)


def decode_batch(body: bytes, max_events: int) -> IntakeBatch:
    """The batch's events; a 400 when the body is not a JSON array of objects, a 413 when it holds
    more than ``max_events``."""
    try:
        events = _events_decoder.decode(body)
        _check_count(len(events), max_events)
        return IntakeBatch(valid=[_checked(event) for event in events])
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError, RecursionError):
        # Something is wrong somewhere: look at each element to tell what, where, and to keep
        # each invalid one as it was sent.
        return _decode_each(body, max_events)


def _decode_each(body: bytes, max_events: int) -> IntakeBatch:
    elements = _elements(body)
    _check_count(len(elements), max_events)
    batch = IntakeBatch()
    for index, raw in enumerate(elements):
        if not raw.startswith(b"{"):
            raise ApiError(
                400, f"element {index} of the batch is not an event object", field=f"[{index}]"
            )
        try:
            batch.valid.append(decode_event(raw))
        except ValueError as exc:
            batch.invalid.append(InvalidEvent(index, raw, str(exc)))
    return batch


def _elements(body: bytes) -> list[bytes]:
    """The JSON text of each element of the batch; a 400 when the body is no JSON array."""
    try:
        return [bytes(element) for element in _batch_decoder.decode(body)]
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"send a JSON array of event objects: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        error = exc
    except RecursionError:
        raise ApiError(400, TOO_DEEP) from None
    # msgspec refuses a lone surrogate escape ("\ud800"), which Python's json module writes for
    # a string holding one, and CVAT's server is Python: such an event must cost only itself.
    # Python's parser splits the batch then; each element is written again (ASCII-escaped, the
    # same JSON value) and decoded on its own, so only the elements msgspec refuses are
    # dead-lettered.
    try:
        parsed = json.loads(body)
        if isinstance(parsed, list):
            return [json.dumps(element).encode() for element in parsed]
    except (ValueError, RecursionError):
        raise ApiError(400, f"the body is not valid JSON: {error}") from None
    raise ApiError(400, "send a JSON array of event objects")


def _check_count(count: int, max_events: int) -> None:
    if count > max_events:
        raise ApiError(
            413,
            f"{count} events exceed the limit of {max_events} per batch; "
            "lower the handler's batch size",
        )


def decode_event(raw: bytes) -> ServerEvent:
    """One event object, or a ValueError (msgspec's ValidationError is one) saying what is wrong."""
    try:
        event = _event_decoder.decode(raw)
    except msgspec.ValidationError:
        # CVAT sends payload as a string; an object is accepted too. Rare: tried only now.
        event = _with_object_payload(raw)
    return _checked(event)


def _checked(event: ServerEvent) -> ServerEvent:
    """The checks msgspec cannot express; the timestamp made UTC."""
    if not event.scope:
        raise ValueError("the event has an empty scope - at `$.scope`")
    try:
        event.timestamp = as_utc(event.timestamp)
        in_range = EARLIEST_TIMESTAMP <= event.timestamp <= LATEST_TIMESTAMP
    except OverflowError:
        # A time at the edge of year 1 or 9999 whose offset moves it out of Python's range.
        in_range = False
    if not in_range:
        raise ValueError(
            "the timestamp is outside 1900-01-01..2299-12-31, which the events table cannot "
            "store - at `$.timestamp`"
        )
    return event


def _with_object_payload(raw: bytes) -> ServerEvent:
    fields = orjson.loads(raw)
    payload = fields.get("payload")
    if not isinstance(payload, dict):
        # Not the payload's fault: decoding again reports what is.
        return _event_decoder.decode(raw)
    fields["payload"] = server_payload(payload)
    return msgspec.convert(fields, ServerEvent, strict=False)
