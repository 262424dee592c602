"""Worker threads for blocking (TextGrad) code whose LLM calls hop back onto the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["ThreadBridge"]

T = TypeVar("T")


class ThreadBridge:
    """Runs blocking work on a thread pool, and lets that work await coroutines on the loop
    that started it: TextGrad is synchronous, but its LLM calls must share the gateway's one
    concurrency limit on the event loop.

    Args:
        max_workers: Threads in the pool (one per in-flight blocking call).
    """

    def __init__(self, max_workers: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fedtextgrad")
        self._loop: asyncio.AbstractEventLoop | None = None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on a worker thread, in a copy of the caller's context (so LangChain
        callbacks and tracing follow it, as with ``asyncio.to_thread``)."""
        self._loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await self._loop.run_in_executor(self._executor, functools.partial(context.run, fn, *args))

    def wait_on_loop(self, awaitable: Awaitable[T]) -> T:
        """From a worker thread: await ``awaitable`` on the event loop, in this thread's context,
        and wait for its result."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("wait_on_loop is only for work started by in_thread")
        context = contextvars.copy_context()
        outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

        def copy_outcome(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                outcome.cancel()
            elif (error := task.exception()) is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(task.result())

        def start() -> None:
            loop.create_task(_result_of(awaitable), context=context).add_done_callback(copy_outcome)

        loop.call_soon_threadsafe(start)
        return outcome.result()


async def _result_of(awaitable: Awaitable[T]) -> T:
    return await awaitable
