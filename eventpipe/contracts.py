"""The data contracts shared by every stage: the client event, the request body, the Kafka messages.

They are msgspec Structs so that one definition serves as the validator of incoming JSON (with error
paths such as ``$.events[3].job_id``), the encoder of the Kafka message and its decoder in the
processor. Field order follows CVAT's event schema, which is also the CSV column order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Final, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

# Bounds of the ClickHouse column types the values land in (see eventpipe.events_table). Ids are
# UInt64 columns, but the validator works in int64, so ids above 2**63 - 1 are refused.
UInt64 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
UInt32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
# CVAT's table holds ``count`` as UInt16: a larger count is refused with the request rather than
# failing the insert of a whole batch later.
UInt16 = Annotated[int, msgspec.Meta(ge=0, le=2**16 - 1)]

CONTRACT_VERSION: Final = 1

# The web client sends it periodically only so that idle time between its other events is told
# from work: it counts for working time and, as in CVAT, is never stored.
USER_ACTIVITY_SCOPE: Final = "user:activity"
# Events a client may send, exactly CVAT's (``ClientEventsSerializer.ALLOWED_SCOPES["client"]``
# in cvat/apps/events/serializers.py, v2.73); a test compares them with CVAT's file.
CLIENT_SCOPES: Final = frozenset(
    (
        *"""
        load:cvat load:job save:job load:workspace send:exception join:objects change:frame
        draw:object paste:object copy:object propagate:object drag:object resize:object
        delete:object merge:objects split:objects group:objects slice:object zoom:image fit:image
        rotate:image action:undo action:redo debug:info run:annotations_action click:element
        """.split(),
        USER_ACTIVITY_SCOPE,
    )
)
WORKING_TIME_SCOPE: Final = "send:working_time"
CLIENT_SOURCE: Final = "client"


class Event(msgspec.Struct, kw_only=True):
    """One CVAT event, as the client sends it and as the gateway echoes it after enrichment."""

    scope: str
    obj_name: str | None = None
    obj_id: UInt64 | None = None
    obj_val: str | None = None
    source: str | None = None
    timestamp: datetime
    count: UInt16 | None = None
    duration: UInt32 | None = 0
    project_id: UInt64 | None = None
    task_id: UInt64 | None = None
    job_id: UInt64 | None = None
    user_id: UInt64 | None = None
    user_name: str | None = None
    user_email: str | None = None
    org_id: UInt64 | None = None
    org_slug: str | None = None
    payload: str | None = None


class ClientEvent(Event, kw_only=True):
    """An event as a client posts it, where a field left out differs from a null, as in CVAT.

    The answer echoes the fields the client sent and those the server sets, as CVAT's does.
    ``source`` left out means ``client``, the only source accepted from clients (any other value,
    null included, is refused). ``payload`` left out is stored as ``{}``; null is refused, and so
    is text that is not JSON. ``duration`` left out is 0; null is refused.
    """

    # UNSET (left out) is not among Event's types, which mypy calls incompatible; it never
    # leaves the gateway: an encoded event omits the field, and the insert writes the column's
    # default.
    obj_name: str | UnsetType | None = UNSET  # type: ignore[assignment]
    obj_id: UInt64 | UnsetType | None = UNSET  # type: ignore[assignment]
    obj_val: str | UnsetType | None = UNSET  # type: ignore[assignment]
    source: Literal["client"] | UnsetType = UNSET  # type: ignore[assignment]
    count: UInt16 | UnsetType | None = UNSET  # type: ignore[assignment]
    duration: UInt32 = 0
    project_id: UInt64 | UnsetType | None = UNSET  # type: ignore[assignment]
    task_id: UInt64 | UnsetType | None = UNSET  # type: ignore[assignment]
    job_id: UInt64 | UnsetType | None = UNSET  # type: ignore[assignment]
    payload: str | UnsetType = UNSET  # type: ignore[assignment]


class ClientEventsRequest(msgspec.Struct, kw_only=True):
    """The body of ``POST /api/events``."""

    # CVAT defaults a missing list to empty, and the SDK omits it when the caller does.
    events: list[ClientEvent] = msgspec.field(default_factory=list)
    previous_event: Event | None = None
    timestamp: datetime


# Events already encoded as a JSON array: msgspec writes a Raw value as it is. The gateway encodes
# each event once, for its row and its answer.
EncodedEvents = msgspec.Raw
# The events of an answer: decoded (list[Event]) where they are read, EncodedEvents where the
# gateway writes them.
EventsT = TypeVar("EventsT", list[Event], EncodedEvents)


class ClientEventsOf(msgspec.Struct, Generic[EventsT], kw_only=True):
    events: EventsT
    timestamp: datetime


class ClientEvents(ClientEventsOf[list[Event]], kw_only=True):
    """The body of the 201 answer: the enriched events, without ``previous_event``."""


class EncodedClientEvents(ClientEventsOf[EncodedEvents], kw_only=True):
    """The 201 answer as the gateway writes it, with its events already encoded."""


class Identity(msgspec.Struct, kw_only=True, frozen=True):
    """Who sent a request and in which organization context (``org_id`` None = personal sandbox)."""

    user_id: int
    user_name: str
    user_email: str | None = None
    org_id: int | None = None
    org_slug: str | None = None


class IngestMessage(msgspec.Struct, kw_only=True):
    """One accepted ``POST /api/events`` request, as format 1 of the events topic carried it.

    Gateways now send its rows instead (:mod:`eventpipe.table_rows`, rendered from this); the
    processor still reads this format from gateways older than it. ``events`` are already
    enriched (clock skew corrected, identity stamped, payload as CVAT stores it);
    ``user:activity`` ones among them count for the working time and are not stored
    (:data:`USER_ACTIVITY_SCOPE`). ``previous_event`` serves the working time only: its timestamp
    is corrected, nothing else.
    """

    version: int = CONTRACT_VERSION
    request_id: uuid.UUID
    received_at: datetime
    identity: Identity
    events: list[Event]
    previous_event: Event | None = None
    # The caller as CVAT's server records it on every event of the request (the ``remote_addr``
    # column), and the client software CVAT writes into its working-time events' payload.
    remote_addr: str | None = None
    user_agent: str | None = None


class ServerEvent(Event, kw_only=True):
    """One event as CVAT's server ships it to its log collector: already enriched by CVAT (its own
    clock, identity and working time), so it is stored as it is."""

    access_token_id: UInt64 | None = None
    # The address of the caller CVAT's server made this event for (CVAT >= 2.66), kept as sent.
    remote_addr: str | None = None


# Messages of the intake start with this (msgspec writes fields in their declared order), which
# tells them from an IngestMessage without decoding twice.
INTAKE_KIND: Final = "cvat-server"
INTAKE_MESSAGE_PREFIX: Final = b'{"kind":"%s"' % INTAKE_KIND.encode()


class IntakeMessage(msgspec.Struct, kw_only=True):
    """One Kafka message on the events topic: the valid events of one batch CVAT's server posted
    to the intake. The processor inserts them without enrichment."""

    kind: str = INTAKE_KIND
    version: int = CONTRACT_VERSION
    received_at: datetime
    events: list[ServerEvent]


def is_intake_message(raw: bytes) -> bool:
    return raw.startswith(INTAKE_MESSAGE_PREFIX)


intake_message_encoder: Final = msgspec.json.Encoder()
intake_message_decoder: Final = msgspec.json.Decoder(IntakeMessage)

# Headers of a dead-letter record: why it is there and where it came from, so that an operator can
# inspect, fix and replay it. The processor parks undecodable messages there, the intake each
# invalid event of a batch.
DEAD_LETTER_REASON_HEADER: Final = "eventpipe-dlq-reason"
DEAD_LETTER_DETAIL_HEADER: Final = "eventpipe-dlq-detail"
DEAD_LETTER_TOPIC_HEADER: Final = "eventpipe-source-topic"
DEAD_LETTER_PARTITION_HEADER: Final = "eventpipe-source-partition"
DEAD_LETTER_OFFSET_HEADER: Final = "eventpipe-source-offset"
# Headers travel with every copy of the record; a validation error can quote a lot of input.
DEAD_LETTER_MAX_DETAIL_BYTES: Final = 1024


def tenant_key(identity: Identity) -> bytes:
    """The Kafka message key: one tenant's requests stay ordered on one partition."""
    if identity.org_id is not None:
        return b"org:%d" % identity.org_id
    return b"user:%d" % identity.user_id


def as_utc(moment: datetime) -> datetime:
    """Timestamps without an offset are taken as UTC; all stored times are UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


ingest_message_encoder: Final = msgspec.json.Encoder()
ingest_message_decoder: Final = msgspec.json.Decoder(IngestMessage)


class EventFilter(msgspec.Struct, kw_only=True, frozen=True):
    """The ids an export's events must have; None means "any"."""

    org_id: UInt64 | None = None
    user_id: UInt64 | None = None
    project_id: UInt64 | None = None
    task_id: UInt64 | None = None
    job_id: UInt64 | None = None


# The id filters, named as the request parameters and the table's columns they apply to.
ID_FILTERS: Final = EventFilter.__struct_fields__


class ExportFilter(EventFilter, kw_only=True, frozen=True):
    """Which events an export holds: ``since <= timestamp <= until`` and every id that is set.

    The gateway builds it with the caller's forced permission filter already applied, so the
    exporter runs it as it is.
    """

    since: datetime
    until: datetime


class ExportRequest(msgspec.Struct, kw_only=True, frozen=True):
    """One Kafka message on the exports topic: run this export and publish it under ``query_id``."""

    version: int = CONTRACT_VERSION
    query_id: uuid.UUID
    owner_user_id: int
    filter: ExportFilter
    filename: str


export_request_encoder: Final = msgspec.json.Encoder()
export_request_decoder: Final = msgspec.json.Decoder(ExportRequest)
