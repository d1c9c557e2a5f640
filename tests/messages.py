"""The Kafka messages of the pipeline's contracts, built one way for every test.

Each builder fills in what a test does not care about (a fresh request or query id) and leaves
everything a test asserts on to its caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import orjson

from eventpipe.contracts import (
    CONTRACT_VERSION,
    WORKING_TIME_SCOPE,
    Event,
    ExportFilter,
    ExportRequest,
    Identity,
    IngestMessage,
    ServerEvent,
)
from eventpipe.table_rows import FLAT_ROWS_VERSION, Rendered, RowsHeader, flat_rows, request_rows
from stream_processors.decoding import decode_ingest_message


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


def rows_message(message: IngestMessage) -> bytes:
    """The rows message a gateway of this version sends for an accepted request with rows."""
    rendered = request_rows(message)
    assert rendered is not None, "a request with rows to store"
    return rendered.message()


def flat_rows_message(message: IngestMessage) -> bytes:
    """The rows message of format 2 (a line per row) a gateway of the previous version sent."""
    rendered = request_rows(message)
    assert rendered is not None, "a request with rows to store"
    lines = b"".join(line for _, line in flat_rows(rendered.body))
    header = msgspec.structs.replace(rendered.header, version=FLAT_ROWS_VERSION)
    return Rendered(header, lines).message()


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


@dataclass(frozen=True)
class DecodedRows:
    """A rows message as the tests read it: its header and each row as a dict."""

    header: RowsHeader
    rows: list[dict[str, Any]]

    @property
    def request_id(self) -> uuid.UUID:
        return uuid.UUID(self.header.ids[0])

    @property
    def events(self) -> list[ServerEvent]:
        """The rows of the events as they came, without the working time the pipeline derived."""
        derived = len(self.header.ids) == 1 and self.rows[0].get("source") == "client"
        return [
            msgspec.convert(row, ServerEvent, strict=False)
            for row in self.rows
            if not (derived and row["scope"] == WORKING_TIME_SCOPE and row["source"] == "server")
        ]

    @property
    def identity(self) -> Identity:
        first = self.rows[0]
        return Identity(
            user_id=first["user_id"],
            user_name=first["user_name"],
            user_email=first["user_email"],
            org_id=first["org_id"],
            org_slug=first["org_slug"],
        )

    @property
    def received_at(self) -> datetime:
        return datetime.fromisoformat(self.rows[0]["received_at"])

    @property
    def remote_addr(self) -> str | None:
        address: str | None = self.rows[0]["remote_addr"]
        return address


def decode_rows(value: bytes | None) -> DecodedRows:
    """The rows message in a Kafka value of the events topic."""
    message = decode_ingest_message(value)
    assert isinstance(message, Rendered), message
    lines = (
        message.body.splitlines()
        if message.header.version == FLAT_ROWS_VERSION
        else [line for _, line in flat_rows(message.body)]
    )
    return DecodedRows(message.header, [orjson.loads(line) for line in lines])
