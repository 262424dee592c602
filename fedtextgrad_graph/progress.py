"""Progress of a run started from Python: fan events out to the caller, and, when asked, show
the command line's live view (``verbose=True``). Nothing is printed unless asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .config import FedTextGradConfig
from .events import RunEvent
from .models import LLMCallRecord

__all__ = ["EventListener", "llm_call_event", "run_listener"]

EventListener = Callable[[RunEvent], None]


@contextmanager
def run_listener(
    config: FedTextGradConfig, run_id: str, *, on_event: EventListener | None, verbose: bool, resume: bool, simulated: bool
) -> Iterator[EventListener | None]:
    """The listener to stream a run with: ``on_event`` and, with ``verbose``, the live view
    (rendered with rich on stdout, as ``fedtextgrad-graph run`` does); ``None`` if neither."""
    if not verbose:
        yield on_event
        return
    from rich.markup import escape

    from .cli.view import SIMULATED_BANNER, RunView, console  # the CLI's renderer, loaded only when asked for

    console.print(f"{'resuming' if resume else 'starting'} run [bold]{escape(run_id)}[/]", highlight=False)
    if simulated:
        console.print(SIMULATED_BANNER)
    with RunView(None, config) as view:
        if on_event is None:
            yield view.event
            return

        def show_and_forward(event: RunEvent) -> None:
            view.event(event)
            on_event(event)

        yield show_and_forward


def llm_call_event(record: LLMCallRecord) -> RunEvent:
    """The ``llm_call`` event of a finished LLM call (its metadata, never its content)."""
    return RunEvent("llm_call", dict(record.__dict__))
