"""The worker's consumer hands a message to the streams at once when there is room for it, and
still gives up a delivery stuck on a full stream buffer when the flow is suspended."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest

from eventpipe.settings import Settings
from stream_processors.faust_app import build_app
from stream_processors.faust_transport import Consumer, EagerWaitFirst, StartedCoroutine


async def test_a_delivery_with_room_is_done_before_anything_else_runs() -> None:
    order: list[str] = []
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
    suspended = asyncio.Event()
    asyncio.get_running_loop().call_soon(order.append, "event loop")

    async def deliver() -> str:
        await queue.put("message")
        order.append("delivered")
        return "done"

    with warnings.catch_warnings():
        # The suspend_flow coroutine that never ran must be closed, not left to warn.
        warnings.simplefilter("error")
        results = await EagerWaitFirst().wait_first(deliver(), suspended.wait())
        await asyncio.sleep(0)

    assert order == ["delivered", "event loop"]
    assert results.results == ["done"]
    assert not results.stopped
    assert queue.get_nowait() == "message"


async def test_a_delivery_that_waits_for_room_finishes_once_there_is_room() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
    queue.put_nowait("earlier")
    suspended = asyncio.Event()

    async def deliver() -> str:
        await queue.put("message")
        return "done"

    waiting = asyncio.create_task(EagerWaitFirst().wait_first(deliver(), suspended.wait()))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert queue.get_nowait() == "earlier"
    results = await asyncio.wait_for(waiting, 5)

    assert results.results == ["done"]
    assert queue.get_nowait() == "message"


async def test_a_delivery_stuck_on_a_full_buffer_is_given_up_when_the_flow_is_suspended() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
    queue.put_nowait("earlier")
    suspended = asyncio.Event()
    given_up = asyncio.Event()

    async def deliver() -> None:
        try:
            await queue.put("message")
        except asyncio.CancelledError:
            given_up.set()
            raise

    waiting = asyncio.create_task(EagerWaitFirst().wait_first(deliver(), suspended.wait()))
    await asyncio.sleep(0.05)
    suspended.set()
    results = await asyncio.wait_for(waiting, 5)
    await asyncio.wait_for(given_up.wait(), 5)

    # Only the suspension won, and the message never reaches the buffer once it has room.
    assert len(results.done) == 1
    assert queue.get_nowait() == "earlier"
    await asyncio.sleep(0.05)
    assert queue.empty()


@pytest.mark.parametrize("waits_first", [False, True], ids=["at once", "after waiting"])
async def test_a_delivery_that_fails_raises_its_error(waits_first: bool) -> None:
    suspended = asyncio.Event()

    async def deliver() -> None:
        if waits_first:
            await asyncio.sleep(0.01)
        raise LookupError("no stream for this partition")

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(LookupError, match="no stream"):
            await EagerWaitFirst().wait_first(deliver(), suspended.wait())


async def test_a_stopping_service_says_so_even_when_the_delivery_was_done() -> None:
    service = EagerWaitFirst()
    await service.stop()

    async def deliver() -> str:
        return "done"

    results = await service.wait_first(deliver(), asyncio.Event().wait())
    assert results.results == ["done"]
    assert results.stopped


async def test_a_started_delivery_that_is_dropped_while_waiting_runs_its_cleanup() -> None:
    cleaned_up: list[str] = []

    async def deliver() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append("deliver")

    coroutine = deliver()
    awaiting = StartedCoroutine(coroutine, coroutine.send(None)).__await__()
    next(awaiting)
    # What a task that is dropped, or a loop that is closed, does to what it awaits.
    awaiting.close()

    assert cleaned_up == ["deliver"]


def test_the_worker_app_consumes_with_the_eager_consumer(tmp_path: Path) -> None:
    app = build_app(Settings(data_dir=tmp_path))
    assert app.transport.Consumer is Consumer
