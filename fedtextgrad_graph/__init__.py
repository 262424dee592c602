"""Federated prompt optimization with textual gradients (FedTextGrad) as a LangGraph graph.

Layout: ``server`` (the round graph, evaluation, convergence), ``site`` (one client: its data,
models and local TextGrad steps), ``transport`` (how the server reaches sites: in-process or
Flower), shared modules (config, state, wire format, prompts, metrics, text, data, models,
aggregation), and the edges (``runs``, ``cli``, ``langchain``, ``checkpoint``, ``report``,
``drawing``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .langchain import (
        FederatedPrompt,
        PromptedApp,
        aload_prompt,
        as_chat_prompt,
        as_system_message,
        federate_app,
        load_prompt,
    )
    from .metrics import LLMJudge, exact_match, last_number_match
    from .models import SimulatedChatModel
    from .runs import RunAwaitingReview, RunEvent, RunExistsError, RunPaused, run_federated
    from .server import FederationRuntime, UploadScreen, build_round_graph, initial_state, register_screen
    from .site import Site
    from .state import RoundRecord, RoundState
    from .transport import ClientTransport, ClientUnavailable, LocalTransport, TransportError, register_transport
    from .wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest

# The public API, imported on first use (PEP 562): `import fedtextgrad_graph` and the CLI's
# `--help` pay for no graph, model or data library they do not use.
_HOMES: dict[str, str] = {
    "EVENT_DATA": ".events",
    "EVENT_KINDS": ".events",
    "Aggregator": ".aggregation",
    "CheckpointError": ".checkpoint",
    "ClientTransport": ".transport",
    "ClientUnavailable": ".transport",
    "ClientUpdate": ".wire",
    "ConcatAggregator": ".aggregation",
    "ConfigError": ".config",
    "DataError": ".data",
    "EvaluateRequest": ".wire",
    "EvaluateResult": ".wire",
    "EventKind": ".events",
    "Example": ".data",
    "FedTextGradConfig": ".config",
    "FederatedPrompt": ".langchain",
    "FederationRuntime": ".server",
    "LLMJudge": ".metrics",
    "LocalTransport": ".transport",
    "PromptedApp": ".langchain",
    "RoundRecord": ".state",
    "RoundState": ".state",
    "RunAwaitingReview": ".runs",
    "RunEvent": ".runs",
    "RunExistsError": ".runs",
    "RunLeaseHeld": ".checkpoint",
    "RunLeaseLost": ".checkpoint",
    "RunPaused": ".runs",
    "SimulatedChatModel": ".models",
    "Site": ".site",
    "SummarizeAggregator": ".aggregation",
    "TrainRequest": ".wire",
    "TransportError": ".transport",
    "UIDAggregator": ".aggregation",
    "UploadScreen": ".server",
    "aload_prompt": ".langchain",
    "as_chat_prompt": ".langchain",
    "as_system_message": ".langchain",
    "build_federated_data": ".data",
    "build_round_graph": ".server",
    "create_aggregator": ".aggregation",
    "create_checkpointer": ".checkpoint",
    "exact_match": ".metrics",
    "federate_app": ".langchain",
    "initial_state": ".server",
    "last_number_match": ".metrics",
    "load_bbh": ".data",
    "load_config": ".config",
    "load_csv": ".data",
    "load_gsm8k": ".data",
    "load_jsonl": ".data",
    "load_prompt": ".langchain",
    "register_aggregator": ".aggregation",
    "register_screen": ".server",
    "register_transport": ".transport",
    "run_federated": ".runs",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
