"""The intake's spool: Kafka records kept on disk while the broker cannot take them.

CVAT's workers ship with python-logstash-async's synchronous handler, which keeps nothing: a batch
the intake refuses is lost. So while the broker is away the intake writes each batch's records
here, answers 200 once they are on disk, and sends them on in the order they came when the broker
is back (:meth:`ingest_gateway.intake.delivery.IntakeDelivery.drain`). Bounded by
``intake_spool_max_bytes``: a full spool is the only time the intake answers 503 for the broker.

On disk: numbered segment files of frames ``[length u32][crc32 u32][entry]``, appended to and
rolled over at ``SEGMENT_BYTES``, and a ``cursor`` file naming the first frame not yet sent. An
entry is one batch's records, msgpack-encoded. Appends are group-committed: one writer thread
writes whatever batches are waiting and makes them durable with one ``fdatasync``, so concurrent
handlers share the disk's flush latency instead of queueing behind each other's.

A crash can leave a torn frame at the end of the last segment: opening the spool cuts it off (its
batch was never answered 200). A crash between sending an entry and moving the cursor sends it
again on restart; its events keep their content keys, so the table holds them once.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import msgspec

from eventpipe.errors import CommandError
from ingest_gateway import metrics

log = logging.getLogger(__name__)

SEGMENT_BYTES: Final = 64 * 1024 * 1024
_FRAME_HEAD: Final = struct.Struct("<II")
_SEGMENT_SUFFIX: Final = ".segment"
_CURSOR: Final = "cursor"
_LOCK: Final = "lock"


class SpooledRecord(msgspec.Struct, array_like=True, frozen=True):
    """One Kafka record as the intake produces it, and how many events it carries."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    events: int


class SpoolEntry(msgspec.Struct, array_like=True, frozen=True):
    """The records of one batch, in the order they are sent."""

    records: list[SpooledRecord]

    @property
    def events(self) -> int:
        return sum(record.events for record in self.records)


class SpoolFull(Exception):
    """The spool holds ``intake_spool_max_bytes``: the batch was not written."""


@dataclass(frozen=True, order=True)
class Position:
    """Where a frame starts: a segment's number and a byte offset in it."""

    segment: int
    offset: int


@dataclass(frozen=True)
class Taken:
    """Entries read from the spool, and what :meth:`IntakeSpool.release` needs once they are
    sent."""

    entries: list[SpoolEntry]
    end: Position
    frame_bytes: int


_entry_encoder: Final = msgspec.msgpack.Encoder()
_entry_decoder: Final = msgspec.msgpack.Decoder(SpoolEntry)


@dataclass
class _Append:
    frame: bytes
    done: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


class IntakeSpool:
    """A bounded FIFO of :class:`SpoolEntry` on disk, for one process at a time."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        # Guards the segment list, the durable end and the counters, which the writer thread,
        # the drain's reads and the event loop's appends all touch.
        self._lock = threading.Lock()
        self._segments: list[int] = []
        self._durable_end = Position(0, 0)
        self._cursor = Position(0, 0)
        self._bytes = 0  # frames written or being written, not yet released
        self._entries = 0
        self._refused = False
        self._appends: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock_file: int | None = None
        self._has_entries = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Take the directory for this process, recover what a previous run left, start the
        writer."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_file = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CommandError(f"cannot use the intake spool {self.directory}: {exc}") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_file)
            raise CommandError(
                f"another intake uses the spool {self.directory}; each intake needs its own"
            ) from None
        self._recover()
        self._writer = threading.Thread(target=self._write_loop, name="intake-spool", daemon=True)
        self._writer.start()
        self._report()
        if self._entries:
            log.warning(
                "the intake spool holds %d batches (%d bytes) from before; sending them first",
                self._entries,
                self._bytes,
            )
            self._has_entries.set()

    def close(self) -> None:
        if self._writer is not None:
            self._appends.put(None)
            self._writer.join()
            self._writer = None
        if self._lock_file is not None:
            os.close(self._lock_file)  # releases the flock
            self._lock_file = None

    # -- appending ------------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        """Nothing waits to be sent, nor is being written: a batch may go to the broker directly
        without overtaking one that came before it."""
        return self._entries == 0

    @property
    def full(self) -> bool:
        """A batch was refused for want of room, and nothing was sent on since."""
        return self._refused

    async def append(self, entry: SpoolEntry) -> None:
        """Return once the entry is on disk; :class:`SpoolFull` when it does not fit."""
        payload = _entry_encoder.encode(entry)
        frame = _FRAME_HEAD.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            # Counted before it is written, so that the next batch queues behind it (see empty)
            # and concurrent appends cannot overfill the spool together.
            if self._bytes + len(frame) > self.max_bytes:
                self._refused = True
                raise SpoolFull
            self._bytes += len(frame)
            self._entries += 1
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        # Settled in the event loop whether or not the caller still waits for it.
        done.add_done_callback(lambda _: self._written(done, len(frame), entry.events))
        self._appends.put(_Append(frame, done, loop))
        # Shielded: a client that goes away does not stop the write, and its batch is sent.
        await asyncio.shield(done)

    def _written(self, done: asyncio.Future[None], size: int, events: int) -> None:
        if done.exception() is not None:
            with self._lock:
                self._bytes -= size
                self._entries -= 1
        else:
            metrics.intake_spooled(events)
            self._has_entries.set()
        self._report()

    def _write_loop(self) -> None:
        while True:
            first = self._appends.get()
            if first is None:
                return
            group = [first]
            while True:
                try:
                    more = self._appends.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._appends.put(None)  # stop after this group
                    break
                group.append(more)
            error: OSError | None = None
            try:
                self._write(b"".join(item.frame for item in group))
            except OSError as exc:
                log.error("cannot write to the intake spool %s: %s", self.directory, exc)
                error = exc
            for item in group:
                item.loop.call_soon_threadsafe(_settle, item.done, error)

    def _write(self, frames: bytes) -> None:
        with self._lock:
            segment, size = self._durable_end.segment, self._durable_end.offset
        if not self._segments or size >= SEGMENT_BYTES:
            segment = self._segments[-1] + 1 if self._segments else self._cursor.segment
            size = 0
        path = self._segment_path(segment)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # A failed write may have left part of a group: write over it.
            os.ftruncate(descriptor, size)
            written = 0
            while written < len(frames):
                written += os.write(descriptor, frames[written:])
            os.fdatasync(descriptor)
        finally:
            os.close(descriptor)
        with self._lock:
            if not self._segments or self._segments[-1] != segment:
                self._segments.append(segment)
                _sync_directory(self.directory)
            self._durable_end = Position(segment, size + len(frames))

    # -- draining -------------------------------------------------------------------------------

    async def wait_for_entries(self) -> None:
        await self._has_entries.wait()

    async def take(self, max_bytes: int) -> Taken:
        """The oldest durable entries, at least one and about ``max_bytes`` of them."""
        return await asyncio.to_thread(self._take, max_bytes)

    def _take(self, max_bytes: int) -> Taken:
        with self._lock:
            start, end = self._cursor, self._durable_end
        entries: list[SpoolEntry] = []
        frame_bytes = 0
        taken_to = end
        for position, entry, size in self._frames(start, end):
            if entries and frame_bytes + size > max_bytes:
                taken_to = position
                break
            entries.append(entry)
            frame_bytes += size
        return Taken(entries, taken_to if entries else start, frame_bytes)

    async def release(self, taken: Taken) -> None:
        """The taken entries are in Kafka: move the cursor past them and drop spent segments."""
        await asyncio.to_thread(self._release, taken)
        # Here, in the event loop, no append can be half counted.
        if not self._entries:
            self._has_entries.clear()
        metrics.intake_drained(sum(entry.events for entry in taken.entries))
        self._report()

    def _release(self, taken: Taken) -> None:
        self._write_cursor(taken.end)
        with self._lock:
            self._cursor = taken.end
            spent = [segment for segment in self._segments if segment < taken.end.segment]
            self._segments = [segment for segment in self._segments if segment >= taken.end.segment]
            self._bytes -= taken.frame_bytes
            self._entries -= len(taken.entries)
            self._refused = False
        for segment in spent:
            self._segment_path(segment).unlink(missing_ok=True)

    def _frames(self, start: Position, end: Position) -> Iterator[tuple[Position, SpoolEntry, int]]:
        """Each frame from ``start`` up to ``end`` with where it starts and its size."""
        with self._lock:
            segments = [segment for segment in self._segments if start.segment <= segment]
        for segment in segments:
            if segment > end.segment:
                return
            offset = start.offset if segment == start.segment else 0
            limit = end.offset if segment == end.segment else None
            with self._segment_path(segment).open("rb") as file:
                file.seek(offset)
                while limit is None or offset < limit:
                    frame = _read_frame(file)
                    if frame is None:
                        break
                    size, entry = frame
                    yield Position(segment, offset), entry, size
                    offset += size

    # -- recovery -------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Read the cursor, drop spent segments, count what is left and cut off a torn tail."""
        self._segments = sorted(
            int(path.name.removesuffix(_SEGMENT_SUFFIX))
            for path in self.directory.glob(f"*{_SEGMENT_SUFFIX}")
        )
        self._cursor = self._read_cursor()
        for segment in [s for s in self._segments if s < self._cursor.segment]:
            self._segment_path(segment).unlink()
        self._segments = [s for s in self._segments if s >= self._cursor.segment]
        if not self._segments:
            # Nothing left to send: new frames start a segment of their own.
            self._cursor = self._durable_end = Position(self._cursor.segment + 1, 0)
            return
        for segment in self._segments:
            offset = self._cursor.offset if segment == self._cursor.segment else 0
            path = self._segment_path(segment)
            with path.open("rb") as file:
                file.seek(offset)
                while (frame := _read_frame(file)) is not None:
                    self._bytes += frame[0]
                    self._entries += 1
                    offset += frame[0]
                torn = file.seek(0, os.SEEK_END) - offset
            if torn:
                log.warning(
                    "the intake spool's %s ends in %d bytes of an unfinished write; cut off",
                    path.name,
                    torn,
                )
                os.truncate(path, offset)
            self._durable_end = Position(segment, offset)

    def _read_cursor(self) -> Position:
        try:
            raw = (self.directory / _CURSOR).read_text().split()
            return Position(int(raw[0]), int(raw[1]))
        except FileNotFoundError:
            return Position(self._segments[0] if self._segments else 0, 0)

    def _write_cursor(self, position: Position) -> None:
        temporary = self.directory / f"{_CURSOR}.new"
        with temporary.open("w") as file:
            file.write(f"{position.segment} {position.offset}\n")
            file.flush()
            os.fdatasync(file.fileno())
        temporary.replace(self.directory / _CURSOR)

    def _segment_path(self, segment: int) -> Path:
        return self.directory / f"{segment:016d}{_SEGMENT_SUFFIX}"

    def _report(self) -> None:
        metrics.intake_spool_state(self._bytes, self._entries, self.max_bytes)


def _read_frame(file: BinaryIO) -> tuple[int, SpoolEntry] | None:
    """The next whole, intact frame's size and entry; None at the end or at a torn frame."""
    head = file.read(_FRAME_HEAD.size)
    if len(head) < _FRAME_HEAD.size:
        return None
    length, checksum = _FRAME_HEAD.unpack(head)
    payload = file.read(length)
    if len(payload) < length or zlib.crc32(payload) != checksum:
        return None
    try:
        return _FRAME_HEAD.size + length, _entry_decoder.decode(payload)
    except msgspec.DecodeError:
        return None


def _settle(done: asyncio.Future[None], error: OSError | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _sync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable too."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
