"""What the gateway calls: start an export, read its status, serve or link its file.

Permission checks stay in the gateway: it passes the final filter (with the caller's forced
values applied) and compares ``ExportStatus.owner_user_id`` with the caller before answering.
Every function here is async and runs blocking store calls in a thread.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Protocol

from eventpipe.contracts import ExportFilter, ExportRequest, export_request_encoder
from eventpipe.export_records import (
    ExportState,
    ExportStatus,
    describe_error,
    new_status,
    read_live_status,
    record_new_export,
    write_status,
)
from eventpipe.object_store import ObjectStore
from eventpipe.settings import Settings


class MessageSender(Protocol):
    """What :func:`submit_export` needs of a producer: an ``AIOKafkaProducer`` has it, and so has
    the gateway's, which bounds the wait and answers 503 while the broker is down."""

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes) -> object: ...


async def submit_export(
    settings: Settings,
    store: ObjectStore,
    producer: MessageSender,
    owner_user_id: int,
    export_filter: ExportFilter,
    filename: str,
    *,
    owner_username: str | None = None,
    query_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record a queued export and ask the exporters to run it; returns its ``query_id``.

    The record is written before the message is produced, so a poll right after this returns
    finds it. If the broker refuses the message, the record says so and the error propagates.
    ``query_id`` is a new one unless the caller names it (the deprecated flow restarts an
    unknown one under its own id, as CVAT does).
    """
    query_id = query_id or uuid.uuid4()
    status = new_status(
        query_id, owner_user_id, filename, export_filter, owner_username=owner_username
    )
    await asyncio.to_thread(record_new_export, store, status)
    request = ExportRequest(
        query_id=query_id, owner_user_id=owner_user_id, filter=export_filter, filename=filename
    )
    try:
        await producer.send_and_wait(
            settings.exports_topic,
            export_request_encoder.encode(request),
            key=str(query_id).encode(),
        )
    except Exception as exc:
        ttl = timedelta(seconds=settings.export_ttl_seconds)
        failed = status.ended(ExportState.FAILED, ttl, error=describe_error(exc))
        await asyncio.to_thread(write_status, store, failed)
        raise
    return query_id


async def get_export_status(
    store: ObjectStore, query_id: uuid.UUID, now: datetime | None = None
) -> ExportStatus | None:
    """The export's record, or None for an unknown, expired or cancelled ``query_id``."""
    return await asyncio.to_thread(read_live_status, store, query_id, now)


async def open_export_download(store: ObjectStore, status: ExportStatus) -> Iterator[bytes]:
    """The finished export's CSV as chunks, opened now (raises ``ObjectNotFound`` now, not while
    sending). The iterator blocks per chunk: Starlette's ``StreamingResponse`` runs a plain
    iterator in its thread pool, which is what it needs."""
    if status.state is not ExportState.FINISHED:
        raise ValueError(f"export {status.query_id} is {status.state}, not finished")
    return await asyncio.to_thread(store.open_chunks, status.object_key)


async def presign_export(
    store: ObjectStore, status: ExportStatus, expires: timedelta
) -> str | None:
    """A credential-free download URL for a finished export (it names ``status.filename``), or
    None when the store cannot make one (the filesystem store): serve the file instead."""
    if status.state is not ExportState.FINISHED:
        raise ValueError(f"export {status.query_id} is {status.state}, not finished")
    return await asyncio.to_thread(store.presign_get, status.object_key, expires, status.filename)


def default_export_filename(now: datetime) -> str:
    """CVAT's name for an export when the request names none."""
    return now.strftime("logs_%Y_%m_%d_%H_%M_%S.csv")
