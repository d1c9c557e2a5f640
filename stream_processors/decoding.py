"""Decode the events topic's raw Kafka values, naming what is wrong.

The topic carries two kinds of message: an :class:`IngestMessage` (one ``POST /api/events``) and
an :class:`IntakeMessage` (one batch from CVAT's server, which starts with its kind).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from eventpipe.contracts import (
    CONTRACT_VERSION,
    IngestMessage,
    IntakeMessage,
    ingest_message_decoder,
    intake_message_decoder,
    is_intake_message,
)

# Reasons a message is undecodable; the dead-letter topic carries them in a header.
EMPTY: Final = "empty"
BAD_JSON: Final = "bad-json"
WRONG_SCHEMA: Final = "wrong-schema"
UNKNOWN_VERSION: Final = "unknown-version"


class Undecodable(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Message = IngestMessage | IntakeMessage


def decode_ingest_message(raw: bytes | None) -> Message:
    """The message in ``raw``, or :class:`Undecodable` saying why no message can come of it."""
    if not raw:
        raise Undecodable(EMPTY, "the message has no value")
    decoder = intake_message_decoder if is_intake_message(raw) else ingest_message_decoder
    try:
        message: Message = decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise Undecodable(WRONG_SCHEMA, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise Undecodable(BAD_JSON, str(exc)) from None
    if message.version != CONTRACT_VERSION:
        raise Undecodable(
            UNKNOWN_VERSION, f"version {message.version}, this processor reads {CONTRACT_VERSION}"
        )
    return message


def decode_all(values: Sequence[bytes | None]) -> list[Message | Undecodable]:
    """Each value's message, or the :class:`Undecodable` that says why there is none."""
    results: list[Message | Undecodable] = []
    for value in values:
        try:
            results.append(decode_ingest_message(value))
        except Undecodable as exc:
            results.append(exc)
    return results
