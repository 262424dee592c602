"""Scoring a global prompt: on server-held data, or federated (clients score their own data).

A phase is scored in shards, each a LangGraph task of the node that scores it (a shard of
``[evaluation] shard_size`` server-held examples, or one client's score): the checkpointer
saves each shard's result as it finishes, so a node resumed after an interruption re-scores
only the shards that had not finished. Each shard carries its own calls and tokens, so the
phase's counts are the same whether its shards ran now or before the interruption.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from langgraph.func import task

from ..models.usage import add_tokens, add_usage, metering, record_reported, tokens_or_unknown, usage_or_unknown
from ..replies import SERVER, ReplyCounts, add_replies
from ..wire import ClientScore, EvaluateRequest, EvaluateResult, TokenCount, Usage
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


class _ShardScore(TypedDict):
    """One shard of server-held examples: its counts, and the server's calls that scored it."""

    correct: int
    total: int
    replies: ReplyCounts
    llm_tokens: TokenCount
    llm_usage: Usage


def _shard_scorer(runtime: FederationRuntime) -> Callable[[str, Literal["validation", "test"], str, int, int | None], Awaitable[_ShardScore]]:
    """The LangGraph task scoring one shard of ``runtime``'s server-held examples (its inputs,
    shown in traces and Studio, are the shard's prompt, split, task, start and round)."""

    @task
    async def score_shard(prompt: str, split: Literal["validation", "test"], task_name: str, start: int, round: int | None) -> _ShardScore:
        """``prompt`` on ``shard_size`` examples of ``task_name``'s ``split`` from ``start``."""
        examples = getattr(runtime.evaluation[task_name], split)[start : start + runtime.config.evaluation.shard_size]
        with metering(client_id=None, isolated=True) as meter:  # reported by the phase, cached shards too
            correct, total = await runtime.accuracy(prompt, examples, task_name, round=round)
        return _ShardScore(correct=correct, total=total, replies=meter.replies(), llm_tokens=meter.count(), llm_usage=meter.usage())

    return score_shard


async def _server_held(runtime: FederationRuntime, prompt: str, split: Literal["validation", "test"], *, round: int | None) -> Score:
    size = runtime.config.evaluation.shard_size
    shards = [
        (task_name, start)
        for task_name, data in runtime.evaluation.items()
        for start in range(0, len(getattr(data, split)), size)
    ]
    score_shard = _shard_scorer(runtime)
    scores = await asyncio.gather(*(score_shard(prompt, split, name, start, round) for name, start in shards))
    tokens = add_tokens(*(s["llm_tokens"] for s in scores))
    record_reported(tokens, add_usage(*(s["llm_usage"] for s in scores)))
    replies = add_replies(*(s["replies"] for s in scores))
    by_task = {name: _counts(0, 0) for name in runtime.evaluation}
    for (name, _), shard in zip(shards, scores, strict=True):
        by_task[name] = _counts(by_task[name]["correct"] + shard["correct"], by_task[name]["total"] + shard["total"])
    correct, total = sum(s["correct"] for s in scores), sum(s["total"] for s in scores)
    return Score(correct, total, sum(n["calls"] for n in replies.values()), replies={SERVER: replies}, by_task=by_task)


def _counts(correct: int, total: int) -> ClientScore:
    """Counts and accuracy (``None`` without examples)."""
    return ClientScore(correct=correct, total=total, accuracy=correct / total if total else None)


def _client_scorer(runtime: FederationRuntime) -> Callable[[EvaluateRequest], Awaitable[EvaluateResult | str]]:
    """The LangGraph task asking one client to score a prompt (its input: the request)."""

    @task
    async def score_client(request: EvaluateRequest) -> EvaluateResult | str:
        """The client's score of the request's prompt, or why it gave none."""
        deadline = runtime.config.federation.client_deadline_s
        try:
            return await asyncio.wait_for(runtime.transport.evaluate(request), deadline)
        except Exception as exc:  # noqa: BLE001 - a site that fails is left out of the score, with the reason
            return failure_reason(exc, deadline)

    return score_client


async def _federated(
    runtime: FederationRuntime, prompt: str, *, run_id: str, round: int | None, split: Literal["validation", "test"]
) -> Score:
    client_ids = runtime.config.federation.client_ids()
    requests = [
        EvaluateRequest(run_id=run_id, client_id=cid, round=round, prompt=prompt, split=split) for cid in client_ids
    ]
    score_client = _client_scorer(runtime)
    replies = await asyncio.gather(*(score_client(r) for r in requests))
    correct = total = llm_calls = 0
    dropped: dict[str, str] = {}
    by_client: dict[str, ClientScore] = {}
    empty_replies: dict[str, ReplyCounts] = {}
    for cid, reply in zip(client_ids, replies, strict=True):
        if isinstance(reply, str):
            dropped[cid] = reply
            logger.info("client %s left out of %s scoring: %s", cid, split, reply)
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
