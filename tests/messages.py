"""The Kafka messages of the pipeline's contracts, built one way for every test.

Each builder fills in what a test does not care about (a fresh request or query id) and leaves
everything a test asserts on to its caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from eventpipe.contracts import (
    CONTRACT_VERSION,
    Event,
    ExportFilter,
    ExportRequest,
    Identity,
    IngestMessage,
)


def ingest_message(
    identity: Identity,
    events: Iterable[Event],
    *,
    received_at: datetime,
    previous_event: Event | None = None,
    remote_addr: str | None = None,
    user_agent: str | None = None,
) -> IngestMessage:
    """An accepted ``POST /api/events`` as the gateway produces it to the events topic."""
    return IngestMessage(
        request_id=uuid.uuid4(),
        received_at=received_at,
        identity=identity,
        events=list(events),
        previous_event=previous_event,
        remote_addr=remote_addr,
        user_agent=user_agent,
    )


def export_request(
    export_filter: ExportFilter,
    *,
    owner_user_id: int = 1,
    filename: str = "a.csv",
    version: int = CONTRACT_VERSION,
) -> ExportRequest:
    """An export as the gateway queues it on the exports topic."""
    return ExportRequest(
        version=version,
        query_id=uuid.uuid4(),
        owner_user_id=owner_user_id,
        filter=export_filter,
        filename=filename,
    )
