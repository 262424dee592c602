"""LangChain integration: federate an app's system prompt, and use a run's prompt in chains and agents."""

from __future__ import annotations

from .apps import PromptedApp, federate_app
from .serving import FederatedPrompt, aload_prompt, as_chat_prompt, as_system_message, load_prompt

__all__ = ["FederatedPrompt", "PromptedApp", "aload_prompt", "as_chat_prompt", "as_system_message", "federate_app", "load_prompt"]
