"""Server-side aggregation of client prompts: an interface, a registry and the built-in strategies,
and the measures of a merge (instruction units, coverage, surprisal estimators, UID score)."""

from __future__ import annotations

from .base import Aggregator, aggregator_names, create_aggregator, register_aggregator
from .concat import ConcatAggregator
from .llm import SummarizeAggregator, UIDAggregator
from .surprisal import (
    CompressionSurprisal,
    LogprobsSurprisal,
    SurprisalEstimator,
    SurprisalUnavailable,
    create_estimator,
    estimator_names,
    register_estimator,
)
from .uid import MergeMeter, Unit, split_units, uid_score, unique_units

__all__ = [
    "Aggregator",
    "CompressionSurprisal",
    "ConcatAggregator",
    "LogprobsSurprisal",
    "MergeMeter",
    "SummarizeAggregator",
    "SurprisalEstimator",
    "SurprisalUnavailable",
    "UIDAggregator",
    "Unit",
    "aggregator_names",
    "create_aggregator",
    "create_estimator",
    "estimator_names",
    "register_aggregator",
    "register_estimator",
    "split_units",
    "uid_score",
    "unique_units",
]
