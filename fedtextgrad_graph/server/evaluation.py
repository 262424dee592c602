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
from typing import Literal, TypedDict, cast

from langgraph.func import task

from ..data import Example
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
    ``client_models``: federated, the models (by role) each client scored with, as it reported.

    The tokens the clients' scoring used go to the server's token meters (see
    :func:`~fedtextgrad_graph.models.usage.metering`)."""

    correct: int
    total: int
    llm_calls: int
    dropped: dict[str, str] = field(default_factory=dict)
    by_client: dict[str, ClientScore] = field(default_factory=dict)
    replies: dict[str, ReplyCounts] = field(default_factory=dict)
    by_task: dict[str, ClientScore] = field(default_factory=dict)
    client_models: dict[str, dict[str, str]] = field(default_factory=dict)

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


class IsolatedScore(TypedDict):
    """A prompt's counts on some server-held examples, with the server's calls that scored them
    (metered apart from the node's: a score read back from the checkpoint still counts them)."""

    correct: int
    total: int
    replies: ReplyCounts
    llm_tokens: TokenCount
    llm_usage: Usage


async def score_isolated(runtime: FederationRuntime, prompt: str, examples: list[Example], task_name: str, *, round: int | None) -> IsolatedScore:
    """``prompt`` on ``examples`` of ``task_name``, metered on its own (for a LangGraph task)."""
    with metering(client_id=None, isolated=True) as meter:
        correct, total = await runtime.accuracy(prompt, examples, task_name, round=round)
    return IsolatedScore(correct=correct, total=total, replies=meter.replies(), llm_tokens=meter.count(), llm_usage=meter.usage())


def report_isolated(scores: list[IsolatedScore]) -> ReplyCounts:
    """Adds the tokens of ``scores`` (made now or read back) to the node's meters; returns
    their calls and empty replies by role."""
    record_reported(add_tokens(*(s["llm_tokens"] for s in scores)), add_usage(*(s["llm_usage"] for s in scores)))
    return add_replies(*(s["replies"] for s in scores))


class _ShardScore(IsolatedScore):
    """One shard of a server-held phase: which task and examples (``[start, stop)``) it scored."""

    task: str
    start: int
    stop: int


def _shard_scorer(runtime: FederationRuntime) -> Callable[[str, Literal["validation", "test"], str, int, int, int | None], Awaitable[_ShardScore]]:
    """Scores one shard of ``runtime``'s server-held examples (run as a LangGraph task, its
    inputs, shown in traces and Studio, are the shard's prompt, split, task, bounds and round)."""

    async def score_shard(
        prompt: str, split: Literal["validation", "test"], task_name: str, start: int, stop: int, round: int | None
    ) -> _ShardScore:
        examples = getattr(runtime.evaluation[task_name], split)[start:stop]
        score = await score_isolated(runtime, prompt, examples, task_name, round=round)
        return _ShardScore(**score, task=task_name, start=start, stop=stop)

    return score_shard


async def _server_held(runtime: FederationRuntime, prompt: str, split: Literal["validation", "test"], *, round: int | None) -> Score:
    size = runtime.config.evaluation.shard_size
    shards = [
        (name, start, min(start + size, len(getattr(data, split))))
        for name, data in runtime.evaluation.items()
        for start in range(0, len(getattr(data, split)), size)
    ]
    score_shard = _shard_scorer(runtime)
    checkpointed = task(score_shard)
    scores = list(await asyncio.gather(*(checkpointed(prompt, split, *shard, round) for shard in shards)))
    # A shard saved before a resume that changed the shards (another shard_size or split) does
    # not match its place: score that place again.
    stale = [i for i, (saved, shard) in enumerate(zip(scores, shards, strict=True)) if (saved["task"], saved["start"], saved["stop"]) != shard]
    for i, fresh in zip(stale, await asyncio.gather(*(score_shard(prompt, split, *shards[i], round) for i in stale)), strict=True):
        scores[i] = fresh
    replies = report_isolated(list(scores))
    by_task = {name: _counts(0, 0) for name in runtime.evaluation}
    for shard in scores:
        by_task[shard["task"]] = _counts(by_task[shard["task"]]["correct"] + shard["correct"], by_task[shard["task"]]["total"] + shard["total"])
    correct, total = sum(s["correct"] for s in scores), sum(s["total"] for s in scores)
    return Score(correct, total, sum(n["calls"] for n in replies.values()), replies={SERVER: replies}, by_task=by_task)


def _counts(correct: int, total: int) -> ClientScore:
    """Counts and accuracy (``None`` without examples)."""
    return ClientScore(correct=correct, total=total, accuracy=correct / total if total else None)


class ClientFailure(TypedDict):
    """Why a client gave no score."""

    client_id: str
    failure: str


def client_scorer(runtime: FederationRuntime) -> Callable[[EvaluateRequest], Awaitable[EvaluateResult | ClientFailure]]:
    """Asks one client to score a prompt (run as a LangGraph task, its input is the request)."""

    async def score_client(request: EvaluateRequest) -> EvaluateResult | ClientFailure:
        deadline = runtime.config.federation.client_deadline_s
        try:
            return await asyncio.wait_for(runtime.transport.evaluate(request), deadline)
        except Exception as exc:  # noqa: BLE001 - a site that fails is left out of the score, with the reason
            return ClientFailure(client_id=request["client_id"], failure=failure_reason(exc, deadline))

    return score_client


async def _federated(
    runtime: FederationRuntime, prompt: str, *, run_id: str, round: int | None, split: Literal["validation", "test"]
) -> Score:
    client_ids = runtime.config.federation.client_ids()
    requests = [
        EvaluateRequest(run_id=run_id, client_id=cid, round=round, prompt=prompt, split=split) for cid in client_ids
    ]
    score_client = client_scorer(runtime)
    checkpointed = task(score_client)
    replies = list(await asyncio.gather(*(checkpointed(r) for r in requests)))
    # A score saved before a resume that changed the clients does not match its place: ask again.
    stale = [i for i, (reply, cid) in enumerate(zip(replies, client_ids, strict=True)) if reply["client_id"] != cid]
    for i, fresh in zip(stale, await asyncio.gather(*(score_client(requests[i]) for i in stale)), strict=True):
        replies[i] = fresh
    correct = total = llm_calls = 0
    dropped: dict[str, str] = {}
    by_client: dict[str, ClientScore] = {}
    empty_replies: dict[str, ReplyCounts] = {}
    client_models: dict[str, dict[str, str]] = {}
    for cid, reply in zip(client_ids, replies, strict=True):
        if "failure" in reply:
            dropped[cid] = cast(ClientFailure, reply)["failure"]
            logger.info("client %s left out of %s scoring: %s", cid, split, dropped[cid])
            continue
        correct += reply["correct"]
        total += reply["total"]
        llm_calls += reply["llm_calls"]
        by_client[cid] = _counts(reply["correct"], reply["total"])
        empty_replies[cid] = reply.get("empty_replies", {})
        if "models" in reply:
            client_models[cid] = reply["models"]
        record_reported(tokens_or_unknown(reply), usage_or_unknown(cid, reply))
    if total == 0:
        reasons = "; ".join(f"{cid}: {why}" for cid, why in dropped.items()) or "no client holds such examples"
        raise EvaluationError(f"no {split} score: no client returned one ({reasons})")
    return Score(correct, total, llm_calls, dropped, by_client, empty_replies, _sum_by_task(runtime, by_client), client_models)


def _sum_by_task(runtime: FederationRuntime, by_client: dict[str, ClientScore]) -> dict[str, ClientScore]:
    """The clients' counts summed by their task (``config.client_task``)."""
    sums: dict[str, tuple[int, int]] = {}
    for cid, score in by_client.items():
        correct, total = sums.get(runtime.config.client_task(cid), (0, 0))
        sums[runtime.config.client_task(cid)] = (correct + score["correct"], total + score["total"])
    return {task: _counts(*counts) for task, counts in sums.items()}
