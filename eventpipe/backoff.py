"""Capped exponential backoff: the one retry schedule of every loop that waits out a failure.

The processor's inserts, the exporter's runs, the gateway's opening of the export store and the
supervisor's restarts all retry something that fails until its peer is back. They share this
schedule, so a change to how the pipeline waits (or a bug in it) is made in one place.

A wait of :func:`retry_until_done` is the schedule's delay stretched by a random fraction (the
jitter): processes that failed together, every worker when ClickHouse went away, then do not all
come back at the same instant. The schedule's delay stays the shortest wait, so a caller can count
on it. :meth:`Backoff.delays` is the bare schedule, for a loop that waits on its own terms (the
exporter's reruns of one export, which no other process waits with).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
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
    # A wait is the delay times 1 to 1 + jitter; 0 makes every wait the delay itself.
    jitter: float = 0.25
    # Draws a number in [0, 1) for each wait.
    uniform: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay(self, failures: int) -> float:
        """The schedule: the shortest wait after the ``failures``-th failure in a row (counting
        from 1)."""
        return min(self.maximum, self.initial * self.factor ** (failures - 1))

    def wait(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row: the delay, jittered."""
        return self.delay(failures) * (1 + self.jitter * self.uniform())

    def delays(self) -> Iterator[float]:
        """The delay after each failure in a row, for as long as the failures go on, without
        jitter."""
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
            delay = backoff.wait(failures)
            on_failure(failures, delay, exc)
        await asyncio.sleep(delay)
