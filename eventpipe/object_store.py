"""What the services need from an object store, independent of where objects live.

The exporter writes exports and their status records through it and the gateway reads them;
the backends live in ``eventpipe.stores``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class ObjectNotFound(LookupError):
    """The key names no published object."""


class Readable(Protocol):
    """A binary stream the store pulls from; ``read`` returns ``b""`` at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime


class ObjectStore(Protocol):
    """A flat key space of immutable objects. Every method blocks: call it from a thread in
    async code (``asyncio.to_thread``).

    ``put`` publishes atomically: readers see either no object or the complete one, and a
    ``put`` that raises leaves no object behind.
    """

    def put(self, key: str, stream: Readable, content_type: str) -> int:
        """Store everything ``stream`` yields under ``key``; returns the size in bytes."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The whole object; meant for small objects such as status records."""
        ...

    def open_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object as chunks, so a server can send it without holding it in memory.

        Raises :class:`ObjectNotFound` at the call, before the first chunk is pulled.
        """
        ...

    def stat(self, key: str) -> ObjectInfo: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def presign_get(self, key: str, expires: timedelta, filename: str) -> str | None:
        """A URL that downloads the object without credentials, or None if the store has none."""
        ...
