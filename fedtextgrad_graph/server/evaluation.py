"""Scoring a global prompt: on server-held data, or federated (clients score their own data)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal

from ..models.usage import record_reported, tokens_or_unknown, usage_or_unknown
from ..replies import SERVER, ReplyCounts, replies_since
from ..wire import ClientScore, EvaluateRequest
from .participation import failure_reason
from .runtime import FederationRuntime

__all__ = ["EvaluationError", "Score", "test_accuracy", "validation_accuracy"]

logger = logging.getLogger(__name__)


class EvaluationError(RuntimeError):
    """No client returned a score for a federated evaluation."""


@dataclass(frozen=True)
class Score:
    """Counts over every example scored, the LLM calls it took, and (federated) the clients
    that failed to score and each other client's own counts (``by_client``; empty when the
    server scored its own data). ``replies``: the calls and empty replies by caller (a client
    id, or ``"server"``) and role. ``by_task``: the counts of each task (federated: the
    clients' counts summed by their task; a task whose clients all failed is absent).

    The tokens the clients' scoring used go to the server's token meters (see
    :func:`~fedtextgrad_graph.models.usage.metering`)."""

    correct: int
    total: int
    llm_calls: int
    dropped: dict[str, str] = field(default_factory=dict)
    by_client: dict[str, ClientScore] = field(default_factory=dict)
    replies: dict[str, ReplyCounts] = field(default_factory=dict)
    by_task: dict[str, ClientScore] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


async def validation_accuracy(runtime: FederationRuntime, prompt: str, *, run_id: str, round: int) -> Score:
    """Validation score of ``prompt``.

    ``server`` mode scores every task's server-held validation split with the server's models.
    ``federated`` mode asks each client to score its own validation data with its own models;
    only the counts come back, so the result is the example-weighted mean over the clients.
    """
    if runtime.config.evaluation.mode == "federated":
        return await _federated(runtime, prompt, run_id=run_id, round=round, split="validation")
    return await _server_held(runtime, prompt, "validation", round=round)


async def test_accuracy(runtime: FederationRuntime, prompt: str, *, run_id: str) -> Score:
    """Test score of ``prompt``: on the server's test splits when it holds every task's data,
    otherwise on each client's own test data."""
    tasks = {runtime.config.client_task(cid) for cid in runtime.config.federation.client_ids()}
    if tasks <= set(runtime.evaluation):
        return await _server_held(runtime, prompt, "test", round=None)
    return await _federated(runtime, prompt, run_id=run_id, round=None, split="test")


async def _server_held(runtime: FederationRuntime, prompt: str, split: Literal["validation", "test"], *, round: int | None) -> Score:
    calls = runtime.gateway.count()
    replies = runtime.gateway.replies(client_id=None)
    tasks = list(runtime.evaluation)
    counts = await asyncio.gather(
        *(runtime.accuracy(prompt, getattr(runtime.evaluation[task], split), task, round=round) for task in tasks)
    )
    made = {SERVER: replies_since(replies, runtime.gateway.replies(client_id=None))}
    by_task = {task: _counts(correct, total) for task, (correct, total) in zip(tasks, counts, strict=True)}
    correct, total = sum(c for c, _ in counts), sum(t for _, t in counts)
    return Score(correct, total, runtime.gateway.count() - calls, replies=made, by_task=by_task)


def _counts(correct: int, total: int) -> ClientScore:
    """Counts and accuracy (``None`` without examples)."""
    return ClientScore(correct=correct, total=total, accuracy=correct / total if total else None)


async def _federated(
    runtime: FederationRuntime, prompt: str, *, run_id: str, round: int | None, split: Literal["validation", "test"]
) -> Score:
    client_ids = runtime.config.federation.client_ids()
    requests = [
        EvaluateRequest(run_id=run_id, client_id=cid, round=round, prompt=prompt, split=split) for cid in client_ids
    ]
    deadline = runtime.config.federation.client_deadline_s
    replies = await asyncio.gather(
        *(asyncio.wait_for(runtime.transport.evaluate(r), deadline) for r in requests), return_exceptions=True
    )
    correct = total = llm_calls = 0
    dropped: dict[str, str] = {}
    by_client: dict[str, ClientScore] = {}
    empty_replies: dict[str, ReplyCounts] = {}
    for cid, reply in zip(client_ids, replies, strict=True):
        if isinstance(reply, BaseException):
            if not isinstance(reply, Exception):
                raise reply
            dropped[cid] = failure_reason(reply, deadline)
            logger.info("client %s left out of %s scoring: %s", cid, split, dropped[cid])
            continue
        correct += reply["correct"]
        total += reply["total"]
        llm_calls += reply["llm_calls"]
        by_client[cid] = _counts(reply["correct"], reply["total"])
        empty_replies[cid] = reply.get("empty_replies", {})
        record_reported(tokens_or_unknown(reply), usage_or_unknown(cid, reply))
    if total == 0:
        reasons = "; ".join(f"{cid}: {why}" for cid, why in dropped.items()) or "no client holds such examples"
        raise EvaluationError(f"no {split} score: no client returned one ({reasons})")
    return Score(correct, total, llm_calls, dropped, by_client, empty_replies, _sum_by_task(runtime, by_client))


def _sum_by_task(runtime: FederationRuntime, by_client: dict[str, ClientScore]) -> dict[str, ClientScore]:
    """The clients' counts summed by their task (``config.client_task``)."""
    sums: dict[str, tuple[int, int]] = {}
    for cid, score in by_client.items():
        correct, total = sums.get(runtime.config.client_task(cid), (0, 0))
        sums[runtime.config.client_task(cid)] = (correct + score["correct"], total + score["total"])
    return {task: _counts(*counts) for task, counts in sums.items()}
