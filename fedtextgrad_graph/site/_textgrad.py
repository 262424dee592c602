"""TextGrad, imported without its prompt log, and an engine over any LangChain chat model.

On import, textgrad opens ``$TEXTGRAD_LOG_DIR`` (default ``./logs/``) and logs every prompt
and response to a JSONL file there: with federated clients that file would hold private data.
``import_textgrad`` points that directory at a throwaway folder, detaches the file handler,
deletes the folder, and silences textgrad's logger (its records carry prompts and replies).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

__all__ = ["create_engine", "import_textgrad", "order_gradients", "prefetch_textgrad"]

_importing = threading.Lock()  # one import at a time: it sets and restores environment variables


def prefetch_textgrad() -> None:
    """Start importing textgrad on a background thread (most of a second), so the
    first LLM calls (the baseline's) need not wait for it and the first TextGrad step finds it
    imported, or waits on a worker thread for the rest, never on the event loop."""
    if "textgrad" not in sys.modules:
        threading.Thread(target=import_textgrad, name="fedtextgrad-import-textgrad", daemon=True).start()


def import_textgrad() -> ModuleType:
    """Import textgrad with no log file in the working directory (idempotent, thread-safe)."""
    with _importing:
        return _import_textgrad()


def _litellm_completion(*args: Any, **kwargs: Any) -> Any:
    """``litellm.completion`` as textgrad's ``LiteLLMEngine`` knows it: the real litellm is
    imported on the first call (this package's engines never make one)."""
    import litellm  # the real module: the stand-in left sys.modules when textgrad was imported

    return litellm.completion(*args, **kwargs)


@contextmanager
def _litellm_deferred() -> Iterator[None]:
    """While textgrad imports, ``litellm`` is a stand-in holding only ``completion``, the one
    name textgrad takes from it (for an engine this package does not use): importing the real
    litellm costs seconds of CPU in every process that trains clients."""
    if "litellm" in sys.modules:
        yield
        return
    stand_in = ModuleType("litellm", "Stands in for litellm while textgrad imports (fedtextgrad_graph).")
    stand_in.completion = _litellm_completion  # type: ignore[attr-defined]
    sys.modules["litellm"] = stand_in
    try:
        yield
    finally:
        if sys.modules.get("litellm") is stand_in:
            del sys.modules["litellm"]


@functools.cache
def _import_textgrad() -> ModuleType:
    scratch = tempfile.mkdtemp(prefix="fedtextgrad-textgrad-")
    if "textgrad" not in sys.modules:
        # litellm, if it is imported after all, would otherwise fetch a price list from the internet.
        settings = {"TEXTGRAD_LOG_DIR": scratch, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        previous = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        try:
            with _litellm_deferred():
                import textgrad  # noqa: F401
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    tg = sys.modules["textgrad"]
    tg_logger = logging.getLogger("textgrad")
    for handler in list(tg_logger.handlers):
        if isinstance(handler, logging.FileHandler):
            tg_logger.removeHandler(handler)
            handler.close()
    tg_logger.addHandler(logging.NullHandler())
    tg_logger.propagate = False
    # textgrad logs every LLM call at INFO: at that level each call built records nobody reads.
    tg_logger.setLevel(logging.WARNING)
    shutil.rmtree(scratch, ignore_errors=True)
    return tg


@functools.cache
def _engine_class() -> type:
    engine_base: Any = import_textgrad().EngineLM  # untyped (textgrad has no type information)

    class LangChainEngine(engine_base):
        """A textgrad engine whose calls go through a blocking ``call(system, prompt)``."""

        def __init__(self, call: Callable[[str, str], str], model_string: str) -> None:
            self._call = call
            self.model_string = model_string

        def generate(self, prompt: Any, system_prompt: str | None = None, **kwargs: Any) -> str:
            if not isinstance(prompt, str):
                raise TypeError("fedtextgrad-graph engines take text prompts only")
            return self._call(system_prompt or self.system_prompt, prompt)

        def __call__(self, prompt: Any, **kwargs: Any) -> str:
            return self.generate(prompt, **kwargs)

    return LangChainEngine


def create_engine(call: Callable[[str, str], str], model_string: str) -> Any:
    """A ``textgrad.EngineLM`` that sends ``(system_prompt, prompt)`` to ``call``."""
    return _engine_class()(call, model_string)


def order_gradients(variable: Any) -> None:
    """Put a variable's textual gradients in a fixed order, so the optimizer's request (which
    lists them in iteration order) is the same on every run.

    TextGrad keeps gradients in a set of objects hashed by identity: their order follows memory
    addresses and changes run to run. They are sorted by their feedback and its context (the
    conversation it was computed for), which depend on the request only.
    """
    context = variable.gradients_context

    def key(gradient: Any) -> tuple[str, str]:
        return json.dumps(context.get(gradient), sort_keys=True, default=str), str(gradient.value)

    variable.gradients = sorted(variable.gradients, key=key)  # textgrad only iterates it from here
