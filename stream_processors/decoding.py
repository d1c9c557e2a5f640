"""Decode the events topic's raw Kafka values, naming what is wrong.

The topic carries two kinds of message: an :class:`IngestMessage` (one ``POST /api/events``) and
an :class:`IntakeMessage` (one batch from CVAT's server, which starts with its kind).
"""

from __future__ import annotations

from collections.abc import Sequence

from eventpipe.contracts import (
    IngestMessage,
    IntakeMessage,
    ingest_message_decoder,
    intake_message_decoder,
    is_intake_message,
)
from eventpipe.message_decoding import Undecodable, decode_versioned

Message = IngestMessage | IntakeMessage


def decode_ingest_message(raw: bytes | None) -> Message:
    """The message in ``raw``, or :class:`Undecodable` saying why no message can come of it."""
    if raw and is_intake_message(raw):
        return decode_versioned(raw, intake_message_decoder)
    return decode_versioned(raw, ingest_message_decoder)


def decode_all(values: Sequence[bytes | None]) -> list[Message | Undecodable]:
    """Each value's message, or the :class:`Undecodable` that says why there is none."""
    results: list[Message | Undecodable] = []
    for value in values:
        try:
            results.append(decode_ingest_message(value))
        except Undecodable as exc:
            results.append(exc)
    return results
