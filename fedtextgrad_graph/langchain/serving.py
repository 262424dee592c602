"""Use a run's prompt in LangChain: load it, wrap it, or serve it live to an agent.

Everything here gives the run's ``best`` prompt (the one that scored highest on validation) unless
asked for ``which="latest"`` (the newest global prompt, even if it scored lower), as does
``fedtextgrad-graph export``.

    prompt = load_prompt("my-run", checkpointer="sqlite:///runs/my-run/checkpoint.sqlite")
    chain = as_chat_prompt(prompt) | model            # braces in the prompt are safe
    agent = create_agent(model, tools, middleware=[FederatedPrompt("my-run", checkpointer=url)])
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from langgraph.checkpoint.base import BaseCheckpointSaver

from ..checkpoint import create_checkpointer, redacted_url
from ..runs import latest_prompt, saved_state

__all__ = ["FederatedPrompt", "aload_prompt", "as_chat_prompt", "as_system_message", "load_prompt"]

logger = logging.getLogger(__name__)
Which = Literal["best", "latest"]


async def aload_prompt(run_id: str, *, checkpointer: str | BaseCheckpointSaver[str], which: Which = "best") -> str:
    """A run's ``best`` (default) or ``latest`` global prompt, from a checkpoint URL (any the
    CLI accepts) or an open saver. With ``[review] required``, only approved prompts: while a
    round awaits review, ``latest`` is the global prompt before that round.

    Raises:
        LookupError: No such run, or it has no prompt of that kind yet.
    """
    if which not in ("best", "latest"):
        raise ValueError(f"which must be 'best' or 'latest', not {which!r}")
    if isinstance(checkpointer, BaseCheckpointSaver):
        state = await saved_state(checkpointer, run_id)
        where = type(checkpointer).__name__
    else:
        async with create_checkpointer(checkpointer, read_only=True) as saver:  # never writes to the store
            state = await saved_state(saver, run_id)
        where = redacted_url(checkpointer)
    if state is None:
        raise LookupError(f"no run {run_id!r} in {where}")
    prompt = state.get("best_prompt") if which == "best" else latest_prompt(state)
    if not prompt:
        raise LookupError(f"run {run_id!r} has no {which} prompt yet")
    return prompt


def load_prompt(run_id: str, *, checkpointer: str | BaseCheckpointSaver[str], which: Which = "best") -> str:
    """Blocking :func:`aload_prompt`; also safe to call while an event loop runs in this thread."""
    return _blocking(aload_prompt(run_id, checkpointer=checkpointer, which=which))


def _blocking(coro: Awaitable[str]) -> str:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


def as_system_message(prompt: str) -> SystemMessage:
    """The prompt as a system message (never templated, so braces need no escaping)."""
    return SystemMessage(prompt)


def as_chat_prompt(prompt: str, *, human: str = "{input}") -> ChatPromptTemplate:
    """A ``ChatPromptTemplate``: the prompt as the system message, then ``human``.

    The prompt's braces are escaped, so an optimized prompt containing ``{...}`` renders as
    written instead of being read as template variables.
    """
    escaped = prompt.replace("{", "{{").replace("}", "}}")
    return ChatPromptTemplate.from_messages([("system", escaped), ("human", human)])


class FederatedPrompt(AgentMiddleware):
    """Agent middleware that sets the system prompt to a run's best prompt (or, with
    ``which="latest"``, its newest global prompt), re-read from the checkpoint store at most
    every ``refresh_s`` seconds, so agents pick up a better prompt without a redeploy.

    Until the run has a prompt, or while the store is unreachable, the agent keeps the last
    prompt served (or, before any, its own system prompt). With ``[review] required`` it is
    served only approved prompts (see :func:`aload_prompt`).

    Args:
        run_id: The federated run to follow.
        checkpointer: Checkpoint URL (``sqlite:///...``, ``redis://...``) or an open saver.
        which: ``best`` (default: the prompt with the highest validation accuracy so far) or
            ``latest`` (the newest global prompt, for an agent that follows every round).
        refresh_s: How long a read prompt is served before the store is read again.
    """

    def __init__(
        self,
        run_id: str,
        *,
        checkpointer: str | BaseCheckpointSaver[str],
        which: Which = "best",
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.checkpointer = checkpointer
        self.which = which
        self.refresh_s = refresh_s
        self._clock = clock
        self._prompt: str | None = None
        self._read_at = float("-inf")

    @property
    def name(self) -> str:
        return f"FederatedPrompt[{self.run_id}]"

    def _fresh(self) -> bool:
        return self._clock() - self._read_at < self.refresh_s

    def _store(self, prompt: str | None) -> str | None:
        self._read_at = self._clock()
        if prompt is not None:
            self._prompt = prompt
        return self._prompt

    async def _aprompt(self) -> str | None:
        if self._fresh():
            return self._prompt
        try:
            return self._store(await aload_prompt(self.run_id, checkpointer=self.checkpointer, which=self.which))
        except Exception as exc:  # noqa: BLE001 - a missing prompt or a down store must not break the agent
            logger.warning("keeping the current prompt of run %s: %s", self.run_id, exc)
            return self._store(None)

    def _prompt_now(self) -> str | None:
        if self._fresh():
            return self._prompt
        return _blocking(self._aprompt())  # type: ignore[arg-type]

    @staticmethod
    def _with_prompt(request: ModelRequest, prompt: str | None) -> ModelRequest:
        return request if prompt is None else request.override(system_message=SystemMessage(prompt))

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        return handler(self._with_prompt(request, self._prompt_now()))

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> Any:
        return await handler(self._with_prompt(request, await self._aprompt()))
