"""SIGTERM stops a run the way Ctrl-C does: the running task is cancelled, so the run's lease
is released and its checkpoint stays resumable (a container stop sends SIGTERM)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Interruption", "cancel_on_sigterm"]


@dataclass
class Interruption:
    """The signal that stopped the run: SIGINT (Ctrl-C) unless SIGTERM arrived."""

    signum: int = signal.SIGINT

    @property
    def exit_code(self) -> int:
        """The shell's status for a process stopped by this signal: 130 or 143."""
        return 128 + self.signum


@contextmanager
def cancel_on_sigterm(stopped: Interruption) -> Iterator[None]:
    """Within a running event loop: on SIGTERM, note it in ``stopped`` and cancel the current
    task, as Ctrl-C does. A process that handles SIGTERM itself (a Flower ServerApp process)
    or a loop outside the main thread keeps its own handling."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def terminate() -> None:
        stopped.signum = signal.SIGTERM
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
