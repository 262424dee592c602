from __future__ import annotations

import asyncio
import os
import signal

import pytest

from fedtextgrad_graph.cli.signals import Interruption, cancel_on_sigterm


async def test_sigterm_cancels_the_task_and_says_so() -> None:
    stopped = Interruption()
    with pytest.raises(asyncio.CancelledError), cancel_on_sigterm(stopped):
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(5)
    assert (stopped.signum, stopped.exit_code) == (signal.SIGTERM, 143)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone again


async def test_a_process_with_its_own_sigterm_handler_keeps_it() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        stopped = Interruption()
        with cancel_on_sigterm(stopped):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.01)
        assert seen == [signal.SIGTERM] and stopped.exit_code == 130
    finally:
        signal.signal(signal.SIGTERM, previous)
