"""Federated prompt optimization with textual gradients (FedTextGrad) as a LangGraph graph."""

from __future__ import annotations

from .aggregation import Aggregator, ConcatAggregator, SummarizeAggregator, UIDAggregator, create_aggregator
from .apps import PromptedApp, federate_app
from .checkpoint import CheckpointError, create_checkpointer
from .config import ConfigError, FedTextGradConfig, load_config
from .data import DataError, Example, build_federated_data, load_bbh, load_csv, load_gsm8k, load_jsonl
from .graph import build_round_graph, initial_state
from .metrics import LLMJudge, exact_match, last_number_match
from .runs import RunEvent, RunExistsError, run_federated
from .serving import FederatedPrompt, aload_prompt, as_chat_prompt, as_system_message, load_prompt
from .runtime import FederationRuntime
from .simulated import SimulatedChatModel
from .state import ClientUpdate, RoundRecord, RoundState

__all__ = [
    "Aggregator",
    "CheckpointError",
    "ClientUpdate",
    "ConcatAggregator",
    "ConfigError",
    "DataError",
    "Example",
    "FedTextGradConfig",
    "FederatedPrompt",
    "FederationRuntime",
    "LLMJudge",
    "PromptedApp",
    "RoundRecord",
    "RoundState",
    "RunEvent",
    "RunExistsError",
    "SimulatedChatModel",
    "SummarizeAggregator",
    "UIDAggregator",
    "aload_prompt",
    "as_chat_prompt",
    "as_system_message",
    "build_federated_data",
    "build_round_graph",
    "create_aggregator",
    "create_checkpointer",
    "exact_match",
    "federate_app",
    "initial_state",
    "last_number_match",
    "load_bbh",
    "load_config",
    "load_csv",
    "load_gsm8k",
    "load_jsonl",
    "load_prompt",
    "run_federated",
]
