"""Expire exports and settle exports nobody is running any more.

Every exporter runs a sweep now and then; sweeps are idempotent, so several at once do no harm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from eventpipe.export_records import (
    PREFIX,
    STATUS_SUFFIX,
    ExportState,
    ExportStatus,
    cancel_key,
    forget_export,
    owner_index_key,
    read_status_at,
    write_status,
)
from eventpipe.object_store import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPolicy:
    # How long a finished or failed export stays downloadable; also the age at which a file
    # whose status record is missing counts as abandoned.
    ttl: timedelta
    # A running export records progress every few seconds; silence this long means its worker
    # died or hung. (A crashed worker's message is delivered again, which resets the clock.)
    stale_running_after: timedelta
    # A queued export waits for a free exporter; this long means none will take it.
    stale_queued_after: timedelta


@dataclass
class SweepReport:
    expired: int = 0
    failed_stale: int = 0
    orphans_deleted: int = 0
    cancelled: int = 0


def sweep(store: ObjectStore, policy: SweepPolicy, now: datetime) -> SweepReport:
    """One pass over every export in ``store``. Blocks; run it in a thread."""
    report = SweepReport()
    objects = {info.key: info for info in store.list(PREFIX)}
    statuses = [key for key in objects if key.endswith(STATUS_SUFFIX)]
    owned_files: set[str] = set()
    for key in statuses:
        status = read_status_at(store, key)
        if status is None:
            continue
        if cancel_key(status.query_id) in objects:
            # Cancelled while no exporter ran it, or by an exporter that died since.
            forget_export(store, status)
            report.cancelled += 1
            continue
        owned_files.add(status.object_key)
        owned_files.add(owner_index_key(status.owner_user_id, status.query_id))
        if status.state.terminal:
            if status.expired(now):
                forget_export(store, status)
                report.expired += 1
        elif _stale(status, policy, now):
            write_status(store, _failed_stale(status, policy))
            report.failed_stale += 1

    for key, info in objects.items():
        if key in owned_files or key.endswith(STATUS_SUFFIX):
            continue
        # A file or index entry whose record is gone: an export that ended after its record
        # was swept, a cancel marker, or an entry whose record was never written.
        if info.last_modified <= now - policy.ttl:
            store.delete(key)
            report.orphans_deleted += 1
    if report != SweepReport():
        log.info("export sweep: %s", report)
    return report


def _stale(status: ExportStatus, policy: SweepPolicy, now: datetime) -> bool:
    limit = (
        policy.stale_running_after
        if status.state is ExportState.RUNNING
        else policy.stale_queued_after
    )
    return status.updated_at <= now - limit


def _failed_stale(status: ExportStatus, policy: SweepPolicy) -> ExportStatus:
    reason = (
        "the export worker stopped responding"
        if status.state is ExportState.RUNNING
        else "no exporter picked up the export"
    )
    return status.ended(ExportState.FAILED, policy.ttl, error=f"{reason}; please retry")
