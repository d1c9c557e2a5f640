"""Faust's Kafka transport with a consumer that hands each fetched message over without tasks.

Faust's consumer loop delivers every fetched message to the agents' streams through
``wait_first(deliver(message), suspend_flow.wait())``, so that a delivery stuck on a full stream
buffer is given up when a rebalance suspends the flow. ``mode``'s ``wait_first`` wraps each of
its coroutines, and the service's stopped and crashed events, in a task, waits for the first,
then cancels the other three: four tasks created and three cancelled for each message. Profiled
on a backlog, that was a third of the worker's event-loop thread, and with one message per
client request it is paid for every hundred events.

A delivery almost never waits: the buffer holds two batches, and only the message that finds it
full has to. So :class:`EagerWaitFirst` runs the first coroutine by hand up to its first
suspension. If it finished, that is the answer and nothing else was created; if it is waiting,
the rest of it is raced against the others exactly as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any, ClassVar, Generic, TypeVar

from faust.transport.drivers import aiokafka
from faust.types import ConsumerT
from mode import Service
from mode.services import WaitArgT, WaitResults
from mode.utils.times import Seconds

T = TypeVar("T")


class StartedCoroutine(Generic[T]):
    """Awaiting this finishes ``coroutine``, which was started by hand and stopped where it
    yielded ``suspended_on``, as if the awaiting task had been running it from the start.

    What the task sends or throws in (a wake-up, a cancellation) goes on to the coroutine, and
    what the coroutine yields (the future it waits on) goes back to the task.
    """

    def __init__(self, coroutine: Coroutine[Any, Any, T], suspended_on: Any) -> None:
        self.coroutine = coroutine
        self.suspended_on = suspended_on

    def __await__(self) -> Generator[Any, Any, T]:
        coroutine, suspended_on = self.coroutine, self.suspended_on
        while True:
            try:
                try:
                    sent = yield suspended_on
                except BaseException as exc:  # a cancellation, or GeneratorExit when dropped
                    suspended_on = coroutine.throw(exc)
                else:
                    suspended_on = coroutine.send(sent)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]


class EagerWaitFirst(Service):
    """A :class:`mode.Service` whose ``wait_first`` runs its first coroutine by hand first."""

    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        first, others = coros[0], coros[1:]
        if asyncio.iscoroutine(first):
            try:
                suspended_on = first.send(None)
            except StopIteration as finished:
                _close(others)
                return WaitResults([first], [finished.value], self.should_stop)
            except BaseException:
                _close(others)
                raise
            coros = (StartedCoroutine(first, suspended_on), *others)
        # mode annotates the coroutines as futures or events and the timeout without None, and
        # takes any awaitable and None.
        return await super().wait_first(*coros, timeout=timeout)  # type: ignore[arg-type]


def _close(coros: tuple[WaitArgT, ...]) -> None:
    """Close the coroutines no task will run, which Python would otherwise warn were never
    awaited."""
    for coro in coros:
        if asyncio.iscoroutine(coro):
            coro.close()


class Consumer(EagerWaitFirst, aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering fetched messages with :class:`EagerWaitFirst`."""


class Transport(aiokafka.Transport):
    """Faust's aiokafka transport, with :class:`Consumer`."""

    Consumer: ClassVar[type[ConsumerT]] = Consumer
