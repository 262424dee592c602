"""Chat models: building them per role, the LLM gateway, worker threads, and the offline model."""

from __future__ import annotations

from .factory import DEFAULT_OPENAI_MODEL, Answerer, ModelRouter, create_chat_model, model_name
from .gateway import LLMCallError, LLMCallRecord, LLMGateway
from .retry import RetryPolicy
from .simulated import SIMULATED_MODEL, SimulatedChatModel
from .threads import ThreadBridge

__all__ = [
    "DEFAULT_OPENAI_MODEL",
    "SIMULATED_MODEL",
    "Answerer",
    "LLMCallError",
    "LLMCallRecord",
    "LLMGateway",
    "ModelRouter",
    "RetryPolicy",
    "SimulatedChatModel",
    "ThreadBridge",
    "create_chat_model",
    "model_name",
]
