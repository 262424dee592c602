"""Experiments: the paper's comparison of a centralized TextGrad baseline with FedTextGrad under
each aggregation strategy, over seeds (``fedtextgrad-graph compare``)."""

from __future__ import annotations

from .arms import Arm, CentralizedArm, StrategyArm, arm_names, centralized_config, create_arm, parse_arms, register_arm
from .compare import ArmRun, ComparisonError, arm_run_id, check_saved_config, comparison_id, plan_comparison, run_comparison
from .summary import Spread, build_comparison, spread

__all__ = [
    "Arm",
    "ArmRun",
    "CentralizedArm",
    "ComparisonError",
    "Spread",
    "StrategyArm",
    "arm_names",
    "arm_run_id",
    "build_comparison",
    "centralized_config",
    "check_saved_config",
    "comparison_id",
    "create_arm",
    "parse_arms",
    "plan_comparison",
    "register_arm",
    "run_comparison",
    "spread",
]
