"""Python's cyclic garbage collector, paced for a run.

A run allocates fast (LangChain messages and configs, LangGraph tasks and checkpoints, TextGrad
graphs: hundreds of objects per LLM call) over a heap of some 450,000 long-lived objects from
its libraries. At CPython's default pace (a young-generation collection every 700 net
allocations, and with it the older generations' passes) the collector took a third of each
call's CPU at zero endpoint latency (``benchmarks/throughput.py``). While a run (or a site's
request) is in progress, the young generation is collected every 20,000 net allocations; the
thresholds the process had come back when the last one in the process ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RUN_GC_THRESHOLD", "paced_collection"]

RUN_GC_THRESHOLD = 20_000
"""Net allocations between young-generation collections while a run is in progress."""

_lock = threading.Lock()
_active = 0
_restore: tuple[int, ...] | None = None  # the thresholds to put back, if this module changed them


@contextmanager
def paced_collection() -> Iterator[None]:
    """Within this block (re-entrant, and shared by concurrent runs), collect the young
    generation every :data:`RUN_GC_THRESHOLD` net allocations, unless the process already
    collects less often (or never)."""
    global _active, _restore
    with _lock:
        if _active == 0:
            threshold = gc.get_threshold()
            if 0 < threshold[0] < RUN_GC_THRESHOLD:
                gc.set_threshold(RUN_GC_THRESHOLD, *threshold[1:])
                _restore = threshold
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            # Put the old pace back, unless the process set another one meanwhile.
            if _active == 0 and _restore is not None:
                if gc.get_threshold()[0] == RUN_GC_THRESHOLD:
                    gc.set_threshold(*_restore)
                _restore = None
