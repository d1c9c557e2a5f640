"""Stream one export's CSV from ClickHouse into the object store, never holding it in memory.

ClickHouse renders each CSV row itself (see :mod:`exporter.query`) and sends it as one string of
a ``RowBinary`` result; this module takes the rows out of that framing, counts them, and checks
that the stream ended on a row boundary.

``raw_stream`` streams on both transports: over HTTP from a server, and from the embedded engine,
whose clickhouse-connect backend streams formats without a header as long as no per-call
settings are given (the query carries its settings in its SQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from clickhouse_connect.driver.client import Client

from eventpipe.stores import ObjectStore
from exporter.query import RESULT_FORMAT, ExportQuery, csv_header

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
# How much the reader asks of the result stream at a time.
_SOURCE_READ = 1 << 20

# Called with (rows, bytes) so far; at most once per progress interval, from the export thread.
ProgressCallback = Callable[[int, int], None]


class IncompleteExportError(RuntimeError):
    """The result stream ended inside a row: the server stopped before the end of the result."""


class _ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ExportResult:
    rows: int
    size: int


class RowStrings:
    """The rows of a ``RowBinary`` result of one ``String`` column, fed in arbitrary chunks.

    Each row is a varint length and that many bytes; :meth:`take` hands over the bytes of the
    complete rows seen so far and keeps an incomplete one for the next chunk.
    """

    def __init__(self) -> None:
        self.rows = 0
        self._pending = b""

    def take(self, chunk: bytes) -> bytes:
        data = self._pending + chunk if self._pending else chunk
        out: list[bytes] = []
        position, end = 0, len(data)
        while position < end:
            length, shift, cursor = 0, 0, position
            while cursor < end:
                byte = data[cursor]
                cursor += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            else:
                break  # the length itself is cut
            if cursor + length > end:
                break
            out.append(data[cursor : cursor + length])
            position = cursor + length
        self.rows += len(out)
        self._pending = data[position:]
        return b"".join(out)

    @property
    def inside_row(self) -> bool:
        return bool(self._pending)


class _CsvReader:
    """The readable the store pulls from: the header row, then the rows the engine rendered."""

    def __init__(
        self, source: _ByteStream, on_progress: ProgressCallback | None, progress_every: float
    ) -> None:
        self._source = source
        self._header: bytes | None = csv_header()
        self._rows = RowStrings()
        self.size = 0
        self._on_progress = on_progress
        self._progress_every = progress_every
        self._next_progress = time.monotonic() + progress_every

    @property
    def rows(self) -> int:
        return self._rows.rows

    def read(self, size: int = -1, /) -> bytes:
        if self._header is not None:
            # The header is a few hundred bytes, far below any read size a store asks for.
            chunk, self._header = self._header, None
        else:
            chunk = b""
            while not chunk:
                raw = self._source.read(max(size, _SOURCE_READ))
                if not raw:
                    self._check_complete()
                    return b""
                chunk = self._rows.take(raw)
        self.size += len(chunk)
        self._report_progress()
        return chunk

    def _check_complete(self) -> None:
        if self._rows.inside_row:
            raise IncompleteExportError(
                f"the query result ended inside a row after {self.rows} complete rows"
            )

    def _report_progress(self) -> None:
        if self._on_progress is not None and time.monotonic() >= self._next_progress:
            self._next_progress = time.monotonic() + self._progress_every
            self._on_progress(self.rows, self.size)


def stream_csv(
    client: Client,
    query: ExportQuery,
    store: ObjectStore,
    key: str,
    *,
    on_progress: ProgressCallback | None = None,
    progress_every: float = 5.0,
) -> ExportResult:
    """Run ``query`` and store its CSV under ``key``. Blocks; run it in a thread.

    If anything fails midway (query, network, store), the store publishes nothing under ``key``
    and the error propagates.
    """
    source = cast(
        _ByteStream, client.raw_stream(query.sql, parameters=query.parameters, fmt=RESULT_FORMAT)
    )
    try:
        reader = _CsvReader(source, on_progress, progress_every)
        size = store.put(key, reader, CSV_CONTENT_TYPE)
    finally:
        # An embedded-engine stream holds its connection until closed, even after its last byte.
        source.close()
    return ExportResult(rows=reader.rows, size=size)
