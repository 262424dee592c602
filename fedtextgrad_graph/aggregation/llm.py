"""LLM merges: ``summarize`` and ``uid`` (summarization guided by Uniform Information Density)."""

from __future__ import annotations

from collections.abc import Mapping

from ..metrics import Generate
from ..prompts import AGGREGATOR_SYSTEM_PROMPT, PROMPT_ITEM, SUMMARIZE_TEMPLATE, UID_TEMPLATE
from .base import Aggregator, register_aggregator

__all__ = ["SummarizeAggregator", "UIDAggregator"]


@register_aggregator
class SummarizeAggregator(Aggregator):
    """Asks the aggregator LLM to merge the client prompts into one."""

    name = "summarize"
    needs_model = True
    template = SUMMARIZE_TEMPLATE

    def __init__(self, generate: Generate, system_prompt: str = AGGREGATOR_SYSTEM_PROMPT) -> None:
        self._generate = generate
        self._system_prompt = system_prompt

    async def _merge(self, bodies: Mapping[str, str]) -> str:
        items = "\n".join(PROMPT_ITEM.format(client_id=cid, prompt=body) for cid, body in bodies.items())
        return (await self._generate(self._system_prompt, self.template.format(prompts=items))).strip()

    async def revise(self, request: str) -> str:
        return (await self._generate(self._system_prompt, request)).strip()


@register_aggregator
class UIDAggregator(SummarizeAggregator):
    """LLM merge guided by the Uniform Information Density principle (FedTextGrad's ``sum_uid``);
    a merge that misses the ``[aggregation]`` targets is repaired (see :mod:`.repair`)."""

    name = "uid"
    enforces_targets = True
    template = UID_TEMPLATE
