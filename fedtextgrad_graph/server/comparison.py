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
import logging
import math
from collections.abc import Mapping

from ..data import sample_examples
from ..models.usage import record_reported, tokens_or_unknown, usage_or_unknown
from ..wire import EvaluateRequest, EvaluateResult, ExampleSample
from .participation import failure_reason
from .runtime import FederationRuntime
from .screening import Comparison, PairedScore

__all__ = ["compare_to_global"]

logger = logging.getLogger(__name__)


async def compare_to_global(
    runtime: FederationRuntime, prompts: Mapping[str, str], *, global_prompt: str, run_id: str, round: int
) -> Comparison:
    """Score ``{client_id: prompt}`` and ``global_prompt`` on the round's validation sample."""
    seed = f"{runtime.config.run.seed}:screen:{round}"
    if runtime.config.evaluation.mode == "federated":
        return await _federated(runtime, prompts, global_prompt, seed=seed, run_id=run_id, round=round)
    return await _server_held(runtime, prompts, global_prompt, seed=seed, round=round)


async def _server_held(
    runtime: FederationRuntime, prompts: Mapping[str, str], global_prompt: str, *, seed: str, round: int
) -> Comparison:
    size = math.ceil(runtime.config.screening.validation_sample / max(1, len(runtime.evaluation)))
    samples = {task: sample_examples(splits.validation, size, f"{seed}:{task}") for task, splits in runtime.evaluation.items()}

    async def score(prompt: str) -> tuple[int, int]:
        counts = await asyncio.gather(
            *(runtime.accuracy(prompt, examples, task, round=round) for task, examples in samples.items())
        )
        return sum(c for c, _ in counts), sum(t for _, t in counts)

    calls = runtime.gateway.count()
    distinct = list(dict.fromkeys([global_prompt, *prompts.values()]))
    counts = dict(zip(distinct, await asyncio.gather(*(score(p) for p in distinct)), strict=True))
    global_correct, total = counts[global_prompt]
    scores = {cid: PairedScore(counts[p][0], global_correct, total) for cid, p in prompts.items()} if total else {}
    return Comparison(scores, runtime.gateway.count() - calls)


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
    deadline = runtime.config.federation.client_deadline_s
    replies = await asyncio.gather(
        *(asyncio.wait_for(runtime.transport.evaluate(r), deadline) for r in requests.values()), return_exceptions=True
    )
    results: dict[tuple[str, str], EvaluateResult] = {}
    for (scorer, prompt), reply in zip(requests, replies, strict=True):
        if isinstance(reply, BaseException):
            if not isinstance(reply, Exception):
                raise reply
            logger.info("client %s left out of screening round %d: %s", scorer, round, failure_reason(reply, deadline))
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
