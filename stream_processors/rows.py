"""A batch of rows for one insert, made of the messages' rows as they came.

A rows message (:mod:`eventpipe.table_rows`) already holds its rows as the engine ingests them:
its body goes into the insert as it is, and the processor reads only its header. A message of
format 1 (a decoded request or intake batch, from a gateway older than the workers) is rendered
here by the same code the gateway uses, so its rows are the same.

Rows are keyed by ``(request_id, event_seq)``. The sink asks the table which of a batch's request
ids it holds; only a message whose ids it holds, or whose ids come twice in the batch, has its
rows read one by one, to keep each key once (:meth:`Rows.without`): those are inserted in format
2, a line per row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from eventpipe.contracts import IngestMessage, IntakeMessage
from eventpipe.table_rows import (
    FLAT_ROWS_VERSION,
    Rendered,
    RowKey,
    RowsHeader,
    flat_rows,
    intake_rows,
    request_rows,
)


class _Key(msgspec.Struct):
    request_id: str
    event_seq: int


_key_decoder: Final = msgspec.json.Decoder(_Key)


class UnreadableRows(Exception):
    """A message's body cannot be read row by row: reading it again would fail again."""


# A decoded message of the events topic: a rows message (its header and body), or format 1.
Message = IngestMessage | IntakeMessage | Rendered


@dataclass(frozen=True)
class Chunk:
    """The rows of one message, in the body of its format (2 or 3)."""

    body: bytes
    ids: list[str]
    rows: int
    earliest_ms: int
    latest_ms: int
    version: int

    @classmethod
    def of(cls, header: RowsHeader, body: bytes) -> Chunk:
        return cls(
            body, header.ids, header.rows, header.earliest_ms, header.latest_ms, header.version
        )

    def keyed_lines(self) -> Iterator[tuple[RowKey, bytes]]:
        """Each row as a line of format 2, with its key; :class:`UnreadableRows` when the body
        does not hold what its header says."""
        try:
            if self.version != FLAT_ROWS_VERSION:
                yield from flat_rows(self.body)
                return
            for line in self.body.splitlines(keepends=True):
                key = _key_decoder.decode(line)
                yield (key.request_id, key.event_seq), line
        except (msgspec.DecodeError, ValueError) as exc:
            raise UnreadableRows(f"a message's rows cannot be read one by one: {exc}") from None


@dataclass
class Rows:
    """Rows for one insert: the messages' chunks, in order."""

    chunks: list[Chunk] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(chunk.rows for chunk in self.chunks)

    @property
    def earliest_ms(self) -> int | None:
        return min((chunk.earliest_ms for chunk in self.chunks), default=None)

    @property
    def latest_ms(self) -> int | None:
        return max((chunk.latest_ms for chunk in self.chunks), default=None)

    def ids(self) -> list[str]:
        """Every request id of the rows' keys, once."""
        return list(dict.fromkeys(id_ for chunk in self.chunks for id_ in chunk.ids))

    def bodies(self) -> dict[int, list[bytes]]:
        """The chunks' bodies, in order, by format."""
        by_version: dict[int, list[bytes]] = {}
        for chunk in self.chunks:
            by_version.setdefault(chunk.version, []).append(chunk.body)
        return by_version

    def has_copies(self) -> bool:
        ids = [id_ for chunk in self.chunks for id_ in chunk.ids]
        return len(set(ids)) < len(ids)

    def without(self, stored: set[RowKey]) -> Rows:
        """These rows less those whose keys are in ``stored``, and each key once: a batch can
        hold two copies of a message (the intake sent a batch again after a restart). Only the
        chunks with a stored or repeated request id are read row by row."""
        counts = Counter(id_ for chunk in self.chunks for id_ in chunk.ids)
        suspect = {request_id for request_id, _ in stored}
        suspect.update(id_ for id_, count in counts.items() if count > 1)
        seen = set(stored)
        kept = Rows()
        for chunk in self.chunks:
            if suspect.isdisjoint(chunk.ids):
                kept.chunks.append(chunk)
                continue
            lines = []
            for key, line in chunk.keyed_lines():
                if key not in seen:
                    seen.add(key)
                    lines.append(line)
            if lines:
                kept.chunks.append(
                    Chunk(
                        b"".join(lines),
                        chunk.ids,
                        len(lines),
                        chunk.earliest_ms,
                        chunk.latest_ms,
                        FLAT_ROWS_VERSION,
                    )
                )
        return kept


def chunk_of(message: Message) -> Chunk | None:
    """The rows of one message; None when it has none."""
    rendered: Rendered | None
    if isinstance(message, IntakeMessage):
        rendered = (
            intake_rows(message.received_at, message.events).rendered() if message.events else None
        )
    elif isinstance(message, IngestMessage):
        rendered = request_rows(message)
    else:
        rendered = message
    return None if rendered is None else Chunk.of(rendered.header, rendered.body)


def build_rows(messages: Sequence[Message]) -> Rows:
    """The rows of ``messages``, each message's in its order."""
    return Rows([chunk for chunk in map(chunk_of, messages) if chunk is not None])


def row_count(message: Message) -> int:
    """How many rows a message brings, about: for format 1 its events, so without its
    working-time rows and with its ``user:activity`` events, which are not stored."""
    if isinstance(message, Rendered):
        return message.header.rows
    return len(message.events)
