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


def test_a_wait_is_the_delay_stretched_by_up_to_the_jitter() -> None:
    draws = iter([0.0, 0.5, 0.999])
    backoff = Backoff(initial=2, maximum=4, jitter=0.5, uniform=lambda: next(draws))
    assert [backoff.wait(n) for n in (1, 2, 3)] == [2, 5, pytest.approx(5.998)]


def test_loops_that_failed_together_do_not_retry_in_step() -> None:
    backoff = Backoff(initial=1, maximum=8)
    waits = [backoff.wait(3) for _ in range(50)]
    assert all(4 <= wait < 4 * 1.25 for wait in waits)
    # Fifty draws from a quarter of the delay: equal waits would mean no jitter at all.
    assert len(set(waits)) > 40


async def test_the_retry_loop_waits_the_jittered_time_and_reports_it() -> None:
    failures: list[float] = []
    outcomes: list[Exception | str] = [OSError("down"), "stored"]

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    backoff = Backoff(initial=0.01, jitter=1, uniform=lambda: 0.5)
    await retry_until_done(attempt, backoff, lambda _, delay, __: failures.append(delay))
    assert failures == [0.015]


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
        Backoff(initial=0.001, factor=3, jitter=0),
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
