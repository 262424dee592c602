"""Server-side aggregation of client prompts: an interface, a registry and the built-in strategies."""

from __future__ import annotations

from .base import Aggregator, aggregator_names, create_aggregator, register_aggregator
from .concat import ConcatAggregator
from .llm import SummarizeAggregator, UIDAggregator

__all__ = [
    "Aggregator",
    "ConcatAggregator",
    "SummarizeAggregator",
    "UIDAggregator",
    "aggregator_names",
    "create_aggregator",
    "register_aggregator",
]
