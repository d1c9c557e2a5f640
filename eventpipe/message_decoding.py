"""Decode a Kafka value into a versioned contract, naming why it cannot be when it cannot.

Every consumer of a topic meets the same bad values (none, not JSON, the wrong shape, a contract
version it does not read) and must skip or park them rather than stop; the reasons are shared so
their logs, metrics and dead-letter headers use the same words.
"""

from __future__ import annotations

from typing import Final, Protocol, TypeVar

import msgspec

from eventpipe.contracts import CONTRACT_VERSION

EMPTY: Final = "empty"
BAD_JSON: Final = "bad-json"
WRONG_SCHEMA: Final = "wrong-schema"
UNKNOWN_VERSION: Final = "unknown-version"


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


M = TypeVar("M", bound=Versioned)


class Undecodable(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


T = TypeVar("T")


def decode_json(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """``raw`` decoded, or :class:`Undecodable` saying why it cannot be."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise Undecodable(WRONG_SCHEMA, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise Undecodable(BAD_JSON, str(exc)) from None


def decode_versioned(raw: bytes | None, decoder: msgspec.json.Decoder[M]) -> M:
    """The message in ``raw``, or :class:`Undecodable` saying why no message can come of it."""
    if not raw:
        raise Undecodable(EMPTY, "the message has no value")
    message = decode_json(raw, decoder)
    if message.version != CONTRACT_VERSION:
        raise Undecodable(
            UNKNOWN_VERSION, f"version {message.version}, this reader reads {CONTRACT_VERSION}"
        )
    return message
