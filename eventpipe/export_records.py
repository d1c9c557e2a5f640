"""Export status records: small JSON objects in the object store, next to the exported file.

The store is the only state the gateway and the exporters share, so the gateway answers polls
without ClickHouse or Kafka. One record per export, ``exports/<query_id>.json``; the CSV itself
is ``exports/<query_id>.csv``. Both export flows (``GET /api/events`` with a ``query_id`` and
CVAT's requests API) read the same records.

Each owner's exports are indexed by empty objects, ``exports/by-owner/<user id>/<query_id>``,
written before the record: listing a user's requests reads that user's records only, however many
others are kept. The sweeper deletes an index entry with its record.

Cancelling an export writes a marker, ``exports/<query_id>.cancel``, which nothing else ever
writes: the record itself keeps being rewritten by a running exporter, so it cannot carry the
owner's decision without a race. An export with a marker is gone for every reader at once; the
exporter that runs it stops at its next progress tick and deletes its record, and the sweeper
deletes what an exporter never got to (and the marker itself, a TTL later).
"""

from __future__ import annotations

import enum
import io
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec

from eventpipe.contracts import ExportFilter
from eventpipe.object_store import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

PREFIX = "exports/"
OWNER_INDEX = f"{PREFIX}by-owner/"
STATUS_SUFFIX = ".json"
CANCEL_SUFFIX = ".cancel"


class ExportState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in {ExportState.FINISHED, ExportState.FAILED}


class ExportStatus(msgspec.Struct, kw_only=True):
    query_id: uuid.UUID
    owner_user_id: int
    state: ExportState
    filename: str
    object_key: str
    created_at: datetime
    updated_at: datetime
    # Set when the export ends; the sweeper deletes the file and this record after it.
    expires_at: datetime | None = None
    rows: int = 0
    size: int = 0
    error: str | None = None
    # The filter the export runs with (forced permissions applied); None in records written
    # before it was kept.
    filter: ExportFilter | None = None
    # When an exporter last took the export up, and when it ended.
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # The owner's username, which an admin reading another user's request is shown; None in
    # records written before it was kept.
    owner_username: str | None = None

    @property
    def failure(self) -> str:
        """What its owner is told about a failed export."""
        return self.error or "the export failed"

    def expired(self, now: datetime) -> bool:
        """Past its expiry: gone for its owner, and the sweeper's to delete."""
        return self.expires_at is not None and self.expires_at <= now

    def with_state(self, state: ExportState, **changes: object) -> ExportStatus:
        """This record moved to ``state`` now, with ``changes`` applied."""
        return msgspec.structs.replace(self, state=state, updated_at=utc_now(), **changes)

    def ended(self, state: ExportState, ttl: timedelta, **changes: object) -> ExportStatus:
        """This record in a terminal ``state``, expiring ``ttl`` from now."""
        now = utc_now()
        return msgspec.structs.replace(
            self, state=state, updated_at=now, ended_at=now, expires_at=now + ttl, **changes
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


def status_key(query_id: uuid.UUID) -> str:
    return f"{PREFIX}{query_id}{STATUS_SUFFIX}"


def object_key(query_id: uuid.UUID) -> str:
    return f"{PREFIX}{query_id}.csv"


def cancel_key(query_id: uuid.UUID) -> str:
    return f"{PREFIX}{query_id}{CANCEL_SUFFIX}"


def owner_index_key(owner_user_id: int, query_id: uuid.UUID) -> str:
    return f"{OWNER_INDEX}{owner_user_id}/{query_id}"


def new_status(
    query_id: uuid.UUID,
    owner_user_id: int,
    filename: str,
    export_filter: ExportFilter | None = None,
    *,
    owner_username: str | None = None,
) -> ExportStatus:
    now = utc_now()
    return ExportStatus(
        query_id=query_id,
        owner_user_id=owner_user_id,
        state=ExportState.QUEUED,
        filename=filename,
        object_key=object_key(query_id),
        created_at=now,
        updated_at=now,
        filter=export_filter,
        owner_username=owner_username,
    )


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ExportStatus)


def record_new_export(store: ObjectStore, status: ExportStatus) -> None:
    """Index a new export under its owner, then write its record. An index entry whose record
    was never written is skipped by readers and swept a TTL later."""
    key = owner_index_key(status.owner_user_id, status.query_id)
    store.put(key, io.BytesIO(b""), "application/octet-stream")
    write_status(store, status)


def write_status(store: ObjectStore, status: ExportStatus) -> None:
    store.put(status_key(status.query_id), io.BytesIO(_encoder.encode(status)), "application/json")


def read_status(store: ObjectStore, query_id: uuid.UUID) -> ExportStatus | None:
    """The record, or None when there is none (never submitted, or expired and swept)."""
    return read_status_at(store, status_key(query_id))


def read_status_at(store: ObjectStore, key: str) -> ExportStatus | None:
    """The record under ``key``, or None if there is none or it is unreadable (logged)."""
    try:
        return _decoder.decode(store.get_bytes(key))
    except ObjectNotFound:
        return None
    except msgspec.DecodeError:
        log.warning("ignoring unreadable export status %s", key)
        return None


def read_live_status(
    store: ObjectStore, query_id: uuid.UUID, now: datetime | None = None
) -> ExportStatus | None:
    """The record as its owner may see it at ``now`` (default: the current time): None also
    once the export expired or was cancelled."""
    status = read_status(store, query_id)
    if status is None or status.expired(now or utc_now()) or is_cancelled(store, query_id):
        return None
    return status


def owned_statuses(
    store: ObjectStore, owner_user_id: int, now: datetime | None = None
) -> Iterator[ExportStatus]:
    """The owner's live records (see :func:`read_live_status`), in no particular order. Reads
    only theirs: the cost grows with the exports the owner keeps, not with everyone's."""
    for info in store.list(f"{OWNER_INDEX}{owner_user_id}/"):
        try:
            query_id = uuid.UUID(info.key.rsplit("/", 1)[1])
        except ValueError:
            continue
        status = read_live_status(store, query_id, now)
        if status is not None and status.owner_user_id == owner_user_id:
            yield status


def mark_cancelled(store: ObjectStore, query_id: uuid.UUID) -> None:
    store.put(cancel_key(query_id), io.BytesIO(b""), "application/octet-stream")


def is_cancelled(store: ObjectStore, query_id: uuid.UUID) -> bool:
    try:
        store.stat(cancel_key(query_id))
    except ObjectNotFound:
        return False
    return True


def forget_export(store: ObjectStore, status: ExportStatus) -> None:
    """Delete an export's file, then its index entry and record: a record without its file would
    advertise a missing download. A cancel marker stays until the sweeper deletes it a TTL
    later, so a request message still in Kafka is recognized as cancelled."""
    store.delete(status.object_key)
    store.delete(owner_index_key(status.owner_user_id, status.query_id))
    store.delete(status_key(status.query_id))


# Longer ClickHouse messages carry the whole query and stack; the user needs the first lines.
MAX_ERROR_CHARS = 2000


def describe_error(exc: BaseException) -> str:
    """The ``error`` of a failed export's record: the exception's first characters."""
    text = str(exc).strip() or type(exc).__name__
    return text[:MAX_ERROR_CHARS]
