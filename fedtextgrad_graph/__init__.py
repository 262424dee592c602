"""Federated prompt optimization with textual gradients (FedTextGrad) as a LangGraph graph.

Layout: ``server`` (the round graph, evaluation, convergence), ``site`` (one client: its data,
models and local TextGrad steps), ``transport`` (how the server reaches sites: in-process or
Flower), shared modules (config, state, wire format, prompts, metrics, text, data, models,
aggregation), and the edges (``runs``, ``cli``, ``langchain``, ``checkpoint``, ``report``,
``drawing``).
"""

from __future__ import annotations

from .aggregation import (
    Aggregator,
    ConcatAggregator,
    SummarizeAggregator,
    UIDAggregator,
    create_aggregator,
    register_aggregator,
)
from .checkpoint import CheckpointError, RunLeaseHeld, RunLeaseLost, create_checkpointer
from .config import ConfigError, FedTextGradConfig, load_config
from .data import DataError, Example, build_federated_data, load_bbh, load_csv, load_gsm8k, load_jsonl
from .events import EVENT_DATA, EVENT_KINDS, EventKind
from .langchain import FederatedPrompt, PromptedApp, aload_prompt, as_chat_prompt, as_system_message, federate_app, load_prompt
from .metrics import LLMJudge, exact_match, last_number_match
from .models import SimulatedChatModel
from .runs import RunAwaitingReview, RunEvent, RunExistsError, RunPaused, run_federated
from .server import FederationRuntime, UploadScreen, build_round_graph, initial_state, register_screen
from .site import Site
from .state import RoundRecord, RoundState
from .transport import ClientTransport, ClientUnavailable, LocalTransport, TransportError, register_transport
from .wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest

__all__ = [
    "EVENT_DATA",
    "EVENT_KINDS",
    "Aggregator",
    "CheckpointError",
    "ClientTransport",
    "ClientUnavailable",
    "ClientUpdate",
    "ConcatAggregator",
    "ConfigError",
    "DataError",
    "EvaluateRequest",
    "EvaluateResult",
    "EventKind",
    "Example",
    "FedTextGradConfig",
    "FederatedPrompt",
    "FederationRuntime",
    "LLMJudge",
    "LocalTransport",
    "PromptedApp",
    "RoundRecord",
    "RoundState",
    "RunAwaitingReview",
    "RunEvent",
    "RunExistsError",
    "RunLeaseHeld",
    "RunLeaseLost",
    "RunPaused",
    "SimulatedChatModel",
    "Site",
    "SummarizeAggregator",
    "TrainRequest",
    "TransportError",
    "UIDAggregator",
    "UploadScreen",
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
    "register_aggregator",
    "register_screen",
    "register_transport",
    "run_federated",
]
