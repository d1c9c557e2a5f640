"""Stream one export's CSV from ClickHouse into the object store, never holding it in memory.

ClickHouse formats the CSV itself (see :mod:`exporter.query`); this module only moves bytes,
counts the rows that pass and checks that the stream ended on a row boundary.

``raw_stream(..., fmt="CSV")`` streams on both transports: over HTTP from a server, and from the
embedded engine, whose clickhouse-connect backend streams formats without a header as long as
no per-call settings are given (the query carries its settings in its SQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
from clickhouse_connect.driver.client import Client

from eventpipe.stores import ObjectStore
from exporter.query import ExportQuery, csv_header

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
_QUOTE = ord('"')
_NEWLINE = ord("\n")

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


class CsvRowCounter:
    """Counts CSV records in a byte stream fed in arbitrary chunks.

    A record ends at a newline outside quotes. ClickHouse quotes every string and doubles quotes
    inside one, so a newline is outside quotes exactly when an even number of quote bytes came
    before it. Counting plain newlines would be wrong for text with line breaks in it.
    """

    def __init__(self) -> None:
        self.rows = 0
        self._odd_quotes = 0

    def feed(self, chunk: bytes) -> None:
        data = np.frombuffer(chunk, dtype=np.uint8)
        quotes = np.flatnonzero(data == _QUOTE)
        newlines = np.flatnonzero(data == _NEWLINE)
        quotes_before = np.searchsorted(quotes, newlines) + self._odd_quotes
        self.rows += int(np.count_nonzero((quotes_before & 1) == 0))
        self._odd_quotes = (self._odd_quotes + len(quotes)) & 1

    @property
    def inside_quotes(self) -> bool:
        return bool(self._odd_quotes)


class _CsvReader:
    """The readable the store pulls from: the header row, then the server's CSV rows."""

    def __init__(
        self, source: _ByteStream, on_progress: ProgressCallback | None, progress_every: float
    ) -> None:
        self._source = source
        self._header: bytes | None = csv_header()
        self._counter = CsvRowCounter()
        self._last_byte = b""
        self.size = 0
        self._on_progress = on_progress
        self._progress_every = progress_every
        self._next_progress = time.monotonic() + progress_every

    @property
    def rows(self) -> int:
        return self._counter.rows

    def read(self, size: int = -1, /) -> bytes:
        if self._header is not None:
            # The header is a few hundred bytes, far below any read size a store asks for.
            chunk, self._header = self._header, None
        else:
            chunk = self._source.read(size)
            if not chunk:
                self._check_complete()
                return b""
            self._counter.feed(chunk)
            self._last_byte = chunk[-1:]
        self.size += len(chunk)
        self._report_progress()
        return chunk

    def _check_complete(self) -> None:
        if self._counter.inside_quotes or self._last_byte not in (b"", b"\n"):
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
    source = cast(_ByteStream, client.raw_stream(query.sql, parameters=query.parameters, fmt="CSV"))
    try:
        reader = _CsvReader(source, on_progress, progress_every)
        size = store.put(key, reader, CSV_CONTENT_TYPE)
    finally:
        # An embedded-engine stream holds its connection until closed, even after its last byte.
        source.close()
    return ExportResult(rows=reader.rows, size=size)
