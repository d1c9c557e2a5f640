"""Decode the events topic's raw Kafka values, naming what is wrong.

The topic carries three kinds of message: a rows message (formats 2 and 3; gateways and intakes of
this version write format 3: :mod:`eventpipe.table_rows`), and, from older ones, an
:class:`IngestMessage` (one ``POST /api/events``) or an :class:`IntakeMessage` (one batch from
CVAT's server, which starts with its kind). Of a rows message only the header is decoded.
"""

from __future__ import annotations

from collections.abc import Sequence

from eventpipe.contracts import ingest_message_decoder, intake_message_decoder, is_intake_message
from eventpipe.message_decoding import (
    UNKNOWN_VERSION,
    WRONG_SCHEMA,
    Undecodable,
    decode_json,
    decode_versioned,
)
from eventpipe.table_rows import (
    FLAT_ROWS_VERSION,
    ROWS_FORMAT_VERSION,
    ROWS_VERSIONS,
    Rendered,
    is_rows_message,
    rows_header_decoder,
)
from stream_processors.rows import Message


def decode_ingest_message(raw: bytes | None) -> Message:
    """The message in ``raw``, or :class:`Undecodable` saying why no message can come of it."""
    if raw and is_rows_message(raw):
        return _rows_message(raw)
    if raw and is_intake_message(raw):
        return decode_versioned(raw, intake_message_decoder)
    return decode_versioned(raw, ingest_message_decoder)


def _rows_message(raw: bytes) -> Rendered:
    end = raw.find(b"\n")
    if end < 0:
        raise Undecodable(WRONG_SCHEMA, "a rows message has no header line")
    header, body = decode_json(raw[:end], rows_header_decoder), raw[end + 1 :]
    if header.version not in ROWS_VERSIONS:
        raise Undecodable(
            UNKNOWN_VERSION,
            f"rows format {header.version}, this processor reads formats"
            f" {FLAT_ROWS_VERSION} to {ROWS_FORMAT_VERSION}: upgrade the processors before the"
            " gateways",
        )
    if header.version == FLAT_ROWS_VERSION:
        # A line per row.
        if body.count(b"\n") != header.rows or (body and not body.endswith(b"\n")):
            raise Undecodable(
                WRONG_SCHEMA, f"the header counts {header.rows} rows, the body differs"
            )
    elif not body or body.find(b"\n") != len(body) - 1:
        raise Undecodable(WRONG_SCHEMA, "the body of a rows message of format 3 is not one line")
    return Rendered(header, body)


def decode_all(values: Sequence[bytes | None]) -> list[Message | Undecodable]:
    """Each value's message, or the :class:`Undecodable` that says why there is none."""
    results: list[Message | Undecodable] = []
    for value in values:
        try:
            results.append(decode_ingest_message(value))
        except Undecodable as exc:
            results.append(exc)
    return results
