"""The ingest agent: events topic -> decode -> rows -> ClickHouse -> ack.

Each step is a small function and there is one commit point: a Kafka message is acked, and so may
have its offset committed by Faust, only after the rows it produced are in ClickHouse (or, for a
message that cannot be decoded or whose rows ClickHouse refuses, after its copy is on the
dead-letter topic). A crash at any other moment means the message is consumed again; the sink
finds the rows an earlier attempt stored and does not store them twice.

The stream is read with ``noack_take``: Faust's ``take`` acks its buffer in a ``finally`` even when
the agent raised (faust-streaming #606, #315), which would commit offsets whose rows were lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import faust
from faust.types import EventT, StreamT

from eventpipe.backoff import Backoff, retry_until_done
from eventpipe.message_decoding import Undecodable
from eventpipe.settings import Settings
from stream_processors.clickhouse_sink import ClickHouseSink, InsertRefused
from stream_processors.dead_letter import DeadLetters
from stream_processors.decoding import decode_all
from stream_processors.faust_app import batch_messages, events_topic
from stream_processors.rows import Chunk, Message, Rows, chunk_of, row_count

log = logging.getLogger(__name__)

INSERT_BACKOFF: Final = Backoff(initial=0.5, maximum=30.0)
# The dead-letter reason of a message whose rows ClickHouse refused.
REFUSED_REASON: Final = "refused-by-clickhouse"


@dataclass
class Batch:
    """Decoded messages waiting for one insert, and every Kafka event to ack once it is done."""

    events: list[EventT[bytes]] = field(default_factory=list)
    # The events whose messages bring rows, with their messages.
    stored: list[tuple[EventT[bytes], Message]] = field(default_factory=list)
    # Rows, as the messages count them (a request of format 1: its events as sent).
    rows: int = 0


Item = tuple[EventT[bytes], Chunk]


class IngestProcessor:
    def __init__(self, sink: ClickHouseSink, dead_letters: DeadLetters, max_rows: int) -> None:
        self.sink = sink
        self.dead_letters = dead_letters
        self.max_rows = max_rows

    async def process(self, taken: Sequence[EventT[bytes]]) -> None:
        """Handle what the stream handed over, as inserts of at most ``max_rows`` rows.

        Everything taken is flushed before returning: the stream hands over nothing more until
        then, so a batch held back for more messages could wait forever on a quiet topic.
        """
        # Decoding runs in a thread like the insert: the event loop keeps feeding the consumer
        # meanwhile. Blocked, it left the fetcher waiting on a fetch the broker holds for
        # fetch_max_wait (1.5 s in Faust).
        decoded = await asyncio.to_thread(decode_all, [event.value for event in taken])
        batch = Batch()
        for event, message in zip(taken, decoded, strict=True):
            batch.events.append(event)
            if isinstance(message, Undecodable):
                await self.dead_letters.send(event, message.reason, message.detail)
                continue
            batch.stored.append((event, message))
            batch.rows += row_count(message)
            if batch.rows >= self.max_rows:
                await self.flush(batch)
                batch = Batch()
        await self.flush(batch)

    async def flush(self, batch: Batch) -> None:
        if batch.stored:
            # Rows of format-1 messages are rendered here; those of rows messages are taken.
            chunks = await asyncio.to_thread(lambda: [chunk_of(m) for _, m in batch.stored])
            items = [
                (event, chunk)
                for (event, _), chunk in zip(batch.stored, chunks, strict=True)
                if chunk is not None
            ]
            await self.store(items)
        # The commit point: from here on Faust may commit these offsets.
        for event in batch.events:
            event.ack()

    async def store(self, items: list[Item]) -> None:
        """Insert the items' rows; if ClickHouse refuses them, find the messages it refuses by
        halving, store the others, and park those on the dead-letter topic."""
        if not items:
            return
        refused = await self.insert_until_done(Rows([chunk for _, chunk in items]))
        if refused is None:
            return
        if len(items) == 1:
            await self.dead_letters.send(items[0][0], REFUSED_REASON, str(refused))
            return
        # Rows that got in before the refusal are found by the sink and not inserted twice.
        middle = len(items) // 2
        await self.store(items[:middle])
        await self.store(items[middle:])

    async def insert_until_done(self, rows: Rows) -> InsertRefused | None:
        """Insert, retrying with capped exponential backoff for as long as it takes; the refusal
        when ClickHouse refuses the rows themselves.

        While this waits the agent takes nothing new, so memory stays bounded and no offset
        moves past the batch; stopping the worker cancels the wait and leaves it unacked.
        """
        failed_attempts = 0

        def failed(attempt: int, delay: float, exc: Exception) -> None:
            nonlocal failed_attempts
            failed_attempts = attempt
            log.warning(
                "insert of %d rows failed (attempt %d), retrying in %.1f s: %s",
                len(rows),
                attempt,
                delay,
                exc,
            )

        async def attempt() -> InsertRefused | None:
            try:
                await self.sink.insert(rows)
            except InsertRefused as refused:
                return refused
            return None

        refused = await retry_until_done(attempt, INSERT_BACKOFF, failed)
        if failed_attempts:
            outcome = "succeeded" if refused is None else "was refused"
            log.info("insert of %d rows %s on attempt %d", len(rows), outcome, failed_attempts + 1)
        return refused


def add_ingest_agent(app: faust.App, settings: Settings, sink: ClickHouseSink) -> None:
    """Register the agent that consumes ``settings.events_topic`` into ClickHouse."""
    processor = IngestProcessor(
        sink, DeadLetters(app, settings.dead_letter_topic), max_rows=settings.batch_max_rows
    )
    # noack_take counts messages, not events, and waits out the whole window unless its buffer
    # fills: sized in messages of a full CVAT request, a busy topic fills it with about
    # batch_max_rows events and is processed at once, a quiet one within batch_max_seconds.
    # ``process`` still cuts what it gets into inserts of at most batch_max_rows events.
    take_messages = batch_messages(settings)

    async def ingest(stream: StreamT[bytes]) -> None:
        # Agents get a faust.Stream; only it has noack_take, which the StreamT protocol lacks.
        taking = cast(faust.Stream[bytes], stream).noack_take
        async for taken in taking(take_messages, within=settings.batch_max_seconds):
            # Annotated as values, but noack_take hands over the events, for acking them.
            await processor.process(cast(Sequence[EventT[bytes]], taken))

    app.agent(events_topic(app, settings), name="ingest")(ingest)
