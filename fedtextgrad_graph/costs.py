"""What LLM usage costs under ``[pricing]``, and whether a run's spend crossed its ``[budget]``."""

from __future__ import annotations

from collections.abc import Mapping

from .config import BudgetConfig, ModelPrice
from .models.usage import SERVER_CALLER
from .wire import RoleUsage

__all__ = ["budget_crossed", "budget_line", "cost_text", "unpriced_models", "usage_cost"]


def _model_of(models: Mapping[str, str], caller: str, role: str) -> str | None:
    """The model ``caller`` used for ``role``, from a round's ``models`` (``<client>.<role>``
    where a client used another model than the others)."""
    if caller != SERVER_CALLER and f"{caller}.{role}" in models:
        return models[f"{caller}.{role}"]
    return models.get(role)


def usage_cost(
    usage: Mapping[str, Mapping[str, RoleUsage]], models: Mapping[str, str], pricing: Mapping[str, ModelPrice]
) -> float | None:
    """USD of ``usage`` (by caller and role) with ``models``; ``None`` when a part that used
    tokens or calls has no price (never guessed)."""
    total = 0.0
    for caller, roles in usage.items():
        for role, n in roles.items():
            if not n["calls"]:
                continue
            name = _model_of(models, caller, role)
            price = pricing.get(name) if name is not None else None
            if price is None or n["calls_without_usage"]:
                return None
            total += (n["input"] * price.input_per_million + n["output"] * price.output_per_million) / 1_000_000
    return total


def unpriced_models(models: Mapping[str, str], pricing: Mapping[str, ModelPrice]) -> list[str]:
    """The models (by role) without a ``[pricing]`` entry."""
    return sorted({name for name in models.values() if name not in pricing})


def budget_crossed(budget: BudgetConfig, tokens: int, usd: float | None) -> bool:
    """Whether ``tokens`` (input + output) or ``usd`` reached a limit of ``budget``."""
    if budget.max_tokens is not None and tokens >= budget.max_tokens:
        return True
    return budget.max_usd is not None and usd is not None and usd >= budget.max_usd


def budget_line(budget: BudgetConfig, tokens: int, usd: float | None) -> str:
    """``spent 12,345 of 10,000 tokens; $0.0123 of $0.01`` (the limits that are set)."""
    parts = []
    if budget.max_tokens is not None:
        parts.append(f"{tokens:,} of {budget.max_tokens:,} tokens")
    if budget.max_usd is not None:
        parts.append(f"${usd:.4f} of ${budget.max_usd:g}" if usd is not None else f"cost unknown of ${budget.max_usd:g}")
    return "spent " + "; ".join(parts)


def cost_text(cost: float | None, priced: bool) -> str:
    """``$0.0123``; without a cost, why (``priced``: the run has a ``[pricing]`` table)."""
    if cost is not None:
        return f"${cost:.4f}"
    return "unknown (a model used has no [pricing], or a call reported no usage)" if priced else "– (no [pricing])"
