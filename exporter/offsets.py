"""Which Kafka offsets may be committed while exports of one partition end out of order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

Partition = TypeVar("Partition")


class OffsetTracker(Generic[Partition]):
    """Commit an offset only once every message before it in its partition has ended, so a
    crash never skips an export that was still running."""

    def __init__(self) -> None:
        # Per partition, offsets in arrival (= increasing) order -> whether their job ended.
        self._pending: dict[Partition, dict[int, bool]] = {}

    def started(self, partition: Partition, offset: int) -> None:
        self._pending.setdefault(partition, {})[offset] = False

    def ended(self, partition: Partition, offset: int) -> None:
        offsets = self._pending.get(partition)
        if offsets is not None and offset in offsets:
            offsets[offset] = True

    def committable(self) -> dict[Partition, int]:
        """The next offset to commit per partition that advanced, forgetting what it covers."""
        commits: dict[Partition, int] = {}
        for partition, offsets in self._pending.items():
            while offsets:
                first = next(iter(offsets))
                if not offsets[first]:
                    break
                del offsets[first]
                commits[partition] = first + 1
        return commits

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop partitions this consumer no longer owns; their new owner redoes open jobs."""
        for partition in partitions:
            self._pending.pop(partition, None)

    @property
    def in_flight(self) -> int:
        return sum(not done for offsets in self._pending.values() for done in offsets.values())
