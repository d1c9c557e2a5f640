"""Capped exponential backoff: the one retry schedule of every loop that waits out a failure.

The processor's inserts, the exporter's runs, the gateway's opening of the export store and the
supervisor's restarts all retry something that fails until its peer is back. They share this
schedule, so a change to how the pipeline waits (or a bug in it) is made in one place.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

# Told of each failure: the attempt that failed (counting from 1), the seconds until the next
# one, and what went wrong.
OnFailure = Callable[[int, float, Exception], None]


@dataclass(frozen=True)
class Backoff:
    """Wait ``initial`` seconds after the first failure, ``factor`` times longer after each
    further one in a row, never more than ``maximum``."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (counting from 1)."""
        return min(self.maximum, self.initial * self.factor ** (failures - 1))

    def delays(self) -> Iterator[float]:
        """The delay after each failure in a row, for as long as the failures go on."""
        return (self.delay(failures) for failures in itertools.count(1))


async def retry_until_done(
    attempt: Callable[[], Awaitable[T]], backoff: Backoff, on_failure: OnFailure
) -> T:
    """``await attempt()`` until it returns, sleeping ``backoff`` between failures.

    Only ``Exception`` is retried: a cancellation ends the waiting at once.
    """
    failures = 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            failures += 1
            delay = backoff.delay(failures)
            on_failure(failures, delay, exc)
        await asyncio.sleep(delay)
