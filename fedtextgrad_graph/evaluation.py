"""Scoring a global prompt: validation held by the server or federated, and the final test."""

from __future__ import annotations

import asyncio

from .runtime import FederationRuntime

__all__ = ["test_accuracy", "validation_accuracy"]


async def validation_accuracy(runtime: FederationRuntime, prompt: str, *, round: int | None = None) -> tuple[int, int]:
    """``(correct, total)`` on validation data.

    ``server`` mode scores every task's validation split with the server's models.
    ``federated`` mode asks each client to score its own validation share with its own models;
    only the counts come back, so the result is the example-weighted mean over clients.
    """
    if runtime.config.evaluation.mode == "federated":
        jobs = [
            runtime.accuracy(prompt, data.validation, data.task, client_id=cid, round=round)
            for cid, data in runtime.data.clients.items()
        ]
    else:
        jobs = [
            runtime.accuracy(prompt, splits.validation, task, round=round) for task, splits in runtime.data.tasks.items()
        ]
    counts = await asyncio.gather(*jobs)
    return sum(c for c, _ in counts), sum(t for _, t in counts)


async def test_accuracy(runtime: FederationRuntime, prompt: str) -> tuple[int, int]:
    """``(correct, total)`` on every task's server-held test split."""
    counts = await asyncio.gather(
        *(runtime.accuracy(prompt, splits.test, task) for task, splits in runtime.data.tasks.items())
    )
    return sum(c for c, _ in counts), sum(t for _, t in counts)
