"""Run one export: queued → running → finished (rows, size) or failed (reason)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from clickhouse_connect.driver.client import Client

from eventpipe.contracts import ExportRequest
from eventpipe.export_records import (
    ExportState,
    ExportStatus,
    describe_error,
    forget_export,
    is_cancelled,
    new_status,
    read_status,
    utc_now,
    write_status,
)
from eventpipe.object_store import ObjectStore
from exporter import metrics
from exporter.csv_stream import stream_csv
from exporter.query import build_export_query

log = logging.getLogger(__name__)


class ExportCancelled(Exception):
    """The worker is stopping; the export goes back to the queue for another worker."""


class ExportWithdrawn(Exception):
    """The export's owner cancelled it: it stopped, and its file and record are deleted."""


@dataclass(frozen=True)
class JobOptions:
    ttl: timedelta
    neutralize_formulas: bool = False
    # 0 keeps the server default; see exporter.query.build_export_query.
    max_threads: int = 0
    # How often a running export records its progress; the sweeper reads a record that has not
    # changed for much longer than this as a dead worker.
    progress_every: float = 5.0


def run_export(
    request: ExportRequest,
    client: Client,
    store: ObjectStore,
    options: JobOptions,
    cancel: threading.Event | None = None,
) -> ExportStatus:
    """Run ``request`` to its end and return its final record. Blocks; run it in a thread.

    Raises :class:`ExportCancelled` (with the record back in ``queued``) if ``cancel`` is set
    before the export ends, and :class:`ExportWithdrawn` if its owner cancels it (checked before
    it starts and at every progress tick); any other failure ends in a ``failed`` record, not an
    exception.
    """
    current = read_status(store, request.query_id)
    if is_cancelled(store, request.query_id):
        if current is not None:
            forget_export(store, current)
        raise ExportWithdrawn
    if current is None:
        # The gateway writes the record before producing; it is gone only if swept meanwhile.
        current = new_status(
            request.query_id, request.owner_user_id, request.filename, request.filter
        )
    elif current.state.terminal:
        # A redelivered message, or an export the sweeper gave up on: its answer stands.
        log.info("export %s is already %s; skipping", request.query_id, current.state)
        return current

    started = time.monotonic()
    # Left as is only when the object store refused the export's status record.
    outcome = "unrecorded"
    with metrics.EXPORTS_RUNNING.track_inprogress():
        try:
            final = _run(request, current, client, store, options, cancel)
            outcome = final.state.value
        except ExportCancelled:
            outcome = "cancelled"
            raise
        except ExportWithdrawn:
            outcome = "withdrawn"
            raise
        finally:
            metrics.EXPORT_SECONDS.labels(outcome).observe(time.monotonic() - started)
    return final


def _run(
    request: ExportRequest,
    current: ExportStatus,
    client: Client,
    store: ObjectStore,
    options: JobOptions,
    cancel: threading.Event | None,
) -> ExportStatus:
    running = current.with_state(
        ExportState.RUNNING, rows=0, size=0, error=None, started_at=utc_now()
    )
    write_status(store, running)

    def progress(rows: int, size: int) -> None:
        if cancel is not None and cancel.is_set():
            raise ExportCancelled
        # Raised inside the store's read of the stream, which then publishes nothing.
        if is_cancelled(store, request.query_id):
            raise ExportWithdrawn
        write_status(store, running.with_state(ExportState.RUNNING, rows=rows, size=size))

    query = build_export_query(
        request.filter,
        neutralize_formulas=options.neutralize_formulas,
        max_threads=options.max_threads,
    )
    try:
        result = stream_csv(
            client,
            query,
            store,
            running.object_key,
            on_progress=progress,
            progress_every=options.progress_every,
        )
    except ExportCancelled:
        write_status(store, running.with_state(ExportState.QUEUED, rows=0, size=0, started_at=None))
        raise
    except ExportWithdrawn:
        forget_export(store, running)
        log.info("export %s cancelled by its owner", request.query_id)
        raise
    except Exception as exc:
        log.exception("export %s failed", request.query_id)
        failed = running.ended(ExportState.FAILED, options.ttl, error=describe_error(exc))
        write_status(store, failed)
        return failed

    finished = running.ended(ExportState.FINISHED, options.ttl, rows=result.rows, size=result.size)
    write_status(store, finished)
    log.info("export %s finished: %d rows, %d bytes", request.query_id, result.rows, result.size)
    return finished
