"""The policy step's timeout (``guard.admission.pipeline._within``): a coroutine that never waits
runs without a timer; one that waits goes on under the timeout it would have had from the start."""

from __future__ import annotations

import asyncio
import time

import pytest

from guard.admission.pipeline import _within


async def test_a_coroutine_that_never_waits_gives_its_value_without_a_timer() -> None:
    loop = asyncio.get_running_loop()
    timers = len(loop._scheduled)  # type: ignore[attr-defined]

    async def now() -> str:
        return "decided"

    assert await _within(now(), 5) == "decided"
    assert len(loop._scheduled) == timers  # type: ignore[attr-defined]
    # as under asyncio.timeout: a body that never gives the loop control back is not stopped
    assert await _within(now(), 0) == "decided"


async def test_an_error_of_a_coroutine_that_never_waits_is_raised_as_it_is() -> None:
    async def fails() -> str:
        raise ValueError("the engine refused the input")

    with pytest.raises(ValueError, match="refused the input"):
        await _within(fails(), 5)


async def test_a_coroutine_that_waits_gets_what_it_waits_for() -> None:
    loop = asyncio.get_running_loop()

    async def waits() -> list[object]:
        got: list[object] = []
        await asyncio.sleep(0)  # a bare yield to the loop
        future: asyncio.Future[str] = loop.create_future()
        loop.call_soon(future.set_result, "answer")
        got.append(await future)
        got.append(await asyncio.sleep(0.001, result="slept"))
        return got

    assert await _within(waits(), 5) == ["answer", "slept"]


async def test_an_error_after_waiting_is_raised_as_it_is() -> None:
    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise KeyError("late")

    with pytest.raises(KeyError, match="late"):
        await _within(fails_later(), 5)


async def test_a_coroutine_past_its_time_is_cancelled_and_times_out() -> None:
    seen: list[str] = []

    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "too late"

    with pytest.raises(TimeoutError):
        await _within(slow(), 0.01)
    assert seen == ["cancelled"]


async def test_the_time_runs_from_the_call_not_from_the_first_wait() -> None:
    async def busy_then_waits() -> str:
        time.sleep(0.05)  # its first step alone takes longer than the whole timeout
        await asyncio.sleep(30)
        return "too late"

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _within(busy_then_waits(), 0.02)
    assert time.monotonic() - started < 25  # ended at once, not after the 30 s sleep


async def test_a_cancelled_caller_cancels_the_coroutine_it_waits_on() -> None:
    seen: list[str] = []
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = asyncio.ensure_future(_within(waits(), 60))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


async def test_a_future_is_awaited_under_the_timeout() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    loop.call_soon(future.set_result, 7)
    assert await _within(future, 5) == 7
    never: asyncio.Future[int] = loop.create_future()
    with pytest.raises(TimeoutError):
        await _within(never, 0.01)
