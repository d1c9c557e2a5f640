"""Export status records: small JSON objects in the object store, next to the exported file.

The store is the only state the gateway and the exporters share, so the gateway answers polls
without ClickHouse or Kafka. One record per export, ``exports/<query_id>.json``; the CSV itself
is ``exports/<query_id>.csv``.
"""

from __future__ import annotations

import enum
import io
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from exporter.stores import ObjectNotFound, ObjectStore

PREFIX = "exports/"
STATUS_SUFFIX = ".json"


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

    def with_state(self, state: ExportState, **changes: object) -> ExportStatus:
        """This record moved to ``state`` now, with ``changes`` applied."""
        return msgspec.structs.replace(self, state=state, updated_at=utc_now(), **changes)

    def ended(self, state: ExportState, ttl: timedelta, **changes: object) -> ExportStatus:
        """This record in a terminal ``state``, expiring ``ttl`` from now."""
        now = utc_now()
        return msgspec.structs.replace(
            self, state=state, updated_at=now, expires_at=now + ttl, **changes
        )


def utc_now() -> datetime:
    return datetime.now(UTC)


def status_key(query_id: uuid.UUID) -> str:
    return f"{PREFIX}{query_id}{STATUS_SUFFIX}"


def object_key(query_id: uuid.UUID) -> str:
    return f"{PREFIX}{query_id}.csv"


def new_status(query_id: uuid.UUID, owner_user_id: int, filename: str) -> ExportStatus:
    now = utc_now()
    return ExportStatus(
        query_id=query_id,
        owner_user_id=owner_user_id,
        state=ExportState.QUEUED,
        filename=filename,
        object_key=object_key(query_id),
        created_at=now,
        updated_at=now,
    )


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ExportStatus)


def write_status(store: ObjectStore, status: ExportStatus) -> None:
    store.put(status_key(status.query_id), io.BytesIO(_encoder.encode(status)), "application/json")


def read_status(store: ObjectStore, query_id: uuid.UUID) -> ExportStatus | None:
    """The record, or None when there is none (never submitted, or expired and swept)."""
    try:
        return _decoder.decode(store.get_bytes(status_key(query_id)))
    except ObjectNotFound:
        return None


def decode_status(data: bytes) -> ExportStatus:
    return _decoder.decode(data)
