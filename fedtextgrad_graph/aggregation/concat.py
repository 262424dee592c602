"""``concat``: the distinct client prompts, one after another."""

from __future__ import annotations

from collections.abc import Mapping

from .base import Aggregator, register_aggregator

__all__ = ["ConcatAggregator"]


@register_aggregator
class ConcatAggregator(Aggregator):
    """Concatenates the distinct client prompts, in the order given (the round's selection order)."""

    name = "concat"

    async def _merge(self, bodies: Mapping[str, str]) -> str:
        return "\n\n".join(bodies.values())
