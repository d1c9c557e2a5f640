"""Decode the events topic's raw Kafka values into :class:`IngestMessage`, naming what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

from eventpipe.contracts import IngestMessage, ingest_message_decoder
from eventpipe.message_decoding import Undecodable, decode_versioned


def decode_all(values: Sequence[bytes | None]) -> list[IngestMessage | Undecodable]:
    """Each value's message, or the :class:`Undecodable` that says why there is none."""
    results: list[IngestMessage | Undecodable] = []
    for value in values:
        try:
            results.append(decode_versioned(value, ingest_message_decoder))
        except Undecodable as exc:
            results.append(exc)
    return results
