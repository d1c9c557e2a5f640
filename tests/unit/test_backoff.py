"""The retry schedule every waiting loop of the pipeline shares."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from eventpipe.backoff import Backoff, retry_until_done


def test_backoff_doubles_up_to_the_maximum() -> None:
    backoff = Backoff(initial=0.5, factor=2, maximum=4)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 4, 4]
    assert list(itertools.islice(backoff.delays(), 6)) == [0.5, 1, 2, 4, 4, 4]


async def test_an_attempt_is_retried_until_it_succeeds_and_each_failure_is_reported() -> None:
    outcomes: list[Exception | str] = [OSError("down"), TimeoutError("slow"), "stored"]
    failures: list[tuple[int, float, str]] = []

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = await retry_until_done(
        attempt,
        Backoff(initial=0.001, factor=3),
        lambda n, delay, exc: failures.append((n, delay, str(exc))),
    )

    assert result == "stored"
    assert failures == [(1, 0.001, "down"), (2, 0.003, "slow")]


async def test_cancelling_ends_the_wait_between_attempts() -> None:
    failed = asyncio.Event()

    async def attempt() -> None:
        raise OSError("down")

    retrying = asyncio.create_task(
        retry_until_done(attempt, Backoff(initial=60), lambda *_: failed.set())
    )
    await asyncio.wait_for(failed.wait(), timeout=5)
    retrying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(retrying, timeout=5)
