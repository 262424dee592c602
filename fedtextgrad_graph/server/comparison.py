"""Client prompts against the global prompt on one validation sample (the validation screen's
measure), scored concurrently.

Server-held (``[evaluation] mode = "server"``): the server scores each distinct prompt, the
global one once, on a seeded sample of every held task's validation split. Federated: every
client scores the global prompt and the other clients' prompts on a seeded sample of its own
validation data; a client's prompt is compared with the global prompt on the samples of the
other clients only. Either way a prompt identical to the global one is not scored again, and
``validation_sample`` is about the number of examples each prompt is scored on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import cast

from langgraph.func import task

from ..data import Example, sample_examples
from ..models.usage import record_reported, tokens_or_unknown, usage_or_unknown
from ..wire import EvaluateRequest, EvaluateResult, ExampleSample
from .evaluation import ClientFailure, IsolatedScore, client_scorer, report_isolated, score_isolated
from .runtime import FederationRuntime
from .screening import Comparison, PairedScore

__all__ = ["compare_to_global"]

logger = logging.getLogger(__name__)


async def compare_to_global(
    runtime: FederationRuntime, prompts: Mapping[str, str], *, global_prompt: str, run_id: str, round: int
) -> Comparison:
    """Score ``{client_id: prompt}`` and ``global_prompt`` on the round's validation sample.

    Each score (a distinct prompt on one task's sample; federated, one client's score of one
    prompt) is a LangGraph task of the calling node, saved as it finishes: a screen resumed
    after an interruption scores again only what had not finished (see
    :mod:`.evaluation`)."""
    seed = f"{runtime.config.run.seed}:screen:{round}"
    if runtime.config.evaluation.mode == "federated":
        return await _federated(runtime, prompts, global_prompt, seed=seed, run_id=run_id, round=round)
    return await _server_held(runtime, prompts, global_prompt, seed=seed, round=round)


def _digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


class _SampleScore(IsolatedScore):
    """A prompt's score on one task's sample, and which (a digest of the prompt, the task)."""

    prompt: str
    task: str


def _sample_scorer(runtime: FederationRuntime, samples: Mapping[str, list[Example]]) -> Callable[[str, str, int], Awaitable[_SampleScore]]:
    """Scores a prompt on one task's sample (run as a LangGraph task: its inputs are the prompt,
    the task and the round)."""

    async def score_sample(prompt: str, task_name: str, round: int) -> _SampleScore:
        score = await score_isolated(runtime, prompt, samples[task_name], task_name, round=round)
        return _SampleScore(**score, prompt=_digest(prompt), task=task_name)

    return score_sample


async def _server_held(
    runtime: FederationRuntime, prompts: Mapping[str, str], global_prompt: str, *, seed: str, round: int
) -> Comparison:
    size = math.ceil(runtime.config.screening.validation_sample / max(1, len(runtime.evaluation)))
    samples = {name: sample_examples(splits.validation, size, f"{seed}:{name}") for name, splits in runtime.evaluation.items()}
    distinct = list(dict.fromkeys([global_prompt, *prompts.values()]))
    shards = [(prompt, name) for prompt in distinct for name in samples]
    score_sample = _sample_scorer(runtime, samples)
    checkpointed = task(score_sample)
    scores = list(await asyncio.gather(*(checkpointed(prompt, name, round) for prompt, name in shards)))
    # A score saved before a resume that changed what is scored does not match its place.
    stale = [i for i, (saved, (prompt, name)) in enumerate(zip(scores, shards, strict=True)) if (saved["prompt"], saved["task"]) != (_digest(prompt), name)]
    for i, fresh in zip(stale, await asyncio.gather(*(score_sample(*shards[i], round) for i in stale)), strict=True):
        scores[i] = fresh
    replies = report_isolated(list(scores))
    counts: dict[str, tuple[int, int]] = {}
    for (prompt, _), score in zip(shards, scores, strict=True):
        correct, total = counts.get(prompt, (0, 0))
        counts[prompt] = (correct + score["correct"], total + score["total"])
    global_correct, total = counts.get(global_prompt, (0, 0))  # (0, 0): no task held here
    paired = {cid: PairedScore(counts[p][0], global_correct, total) for cid, p in prompts.items()} if total else {}
    return Comparison(paired, sum(n["calls"] for n in replies.values()), replies)


async def _federated(
    runtime: FederationRuntime, prompts: Mapping[str, str], global_prompt: str, *, seed: str, run_id: str, round: int
) -> Comparison:
    scorers = runtime.config.federation.client_ids()
    sample = ExampleSample(size=math.ceil(runtime.config.screening.validation_sample / max(1, len(scorers) - 1)), seed=seed)
    requests: dict[tuple[str, str], EvaluateRequest] = {}
    for scorer in scorers:
        for prompt in dict.fromkeys([global_prompt, *(p for cid, p in prompts.items() if cid != scorer)]):
            requests[scorer, prompt] = EvaluateRequest(
                run_id=run_id, client_id=scorer, round=round, prompt=prompt, split="validation", sample=sample
            )
    keys = list(requests)
    score_client = client_scorer(runtime)
    checkpointed = task(score_client)
    replies = list(await asyncio.gather(*(checkpointed(r) for r in requests.values())))
    # A score saved before a resume that changed the clients does not match its place: ask again.
    stale = [i for i, (reply, (scorer, _)) in enumerate(zip(replies, keys, strict=True)) if reply["client_id"] != scorer]
    for i, fresh in zip(stale, await asyncio.gather(*(score_client(requests[keys[i]]) for i in stale)), strict=True):
        replies[i] = fresh
    results: dict[tuple[str, str], EvaluateResult] = {}
    for (scorer, prompt), reply in zip(keys, replies, strict=True):
        if "failure" in reply:
            logger.info("client %s left out of screening round %d: %s", scorer, round, cast(ClientFailure, reply)["failure"])
            continue
        results[scorer, prompt] = reply
        record_reported(tokens_or_unknown(reply), usage_or_unknown(scorer, reply))
    scores = {}
    for cid, prompt in prompts.items():
        correct = global_correct = total = 0
        for scorer in scorers:
            mine, theirs = results.get((scorer, prompt)), results.get((scorer, global_prompt))
            if scorer == cid or mine is None or theirs is None:
                continue
            correct, global_correct, total = correct + mine["correct"], global_correct + theirs["correct"], total + mine["total"]
        if total:
            scores[cid] = PairedScore(correct, global_correct, total)
    return Comparison(scores, sum(r["llm_calls"] for r in results.values()))
