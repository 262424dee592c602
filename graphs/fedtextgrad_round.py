"""The FedTextGrad round graph for ``langgraph dev`` and LangGraph Studio (docs/studio.md).

``langgraph.json`` names :func:`make_graph`, a graph factory: the server calls it for every
run (and every drawing), so each run has a runtime of its own (data, models, LLM gateway and
its call counts) that is closed when the run ends. The server provides the checkpointer.

Environment:
    FEDTEXTGRAD_CONFIG: the run config (TOML); default ``examples/object_counting.toml`` of
        this repository.
    FEDTEXTGRAD_MODEL: the model of every role, an ``init_chat_model`` string or ``simulated``
        (the default: offline, scripted, not a language model).

An empty input (``{}``) starts a run from the config's initial prompt.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fedtextgrad_graph import FederationRuntime, FedTextGradConfig, build_round_graph, load_config
from fedtextgrad_graph.server.graph import RoundGraph

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "object_counting.toml"
DEFAULT_MODEL = "simulated"


def studio_config() -> FedTextGradConfig:
    """The config named by ``FEDTEXTGRAD_CONFIG``, every role using ``FEDTEXTGRAD_MODEL``."""
    path = os.environ.get("FEDTEXTGRAD_CONFIG") or DEFAULT_CONFIG
    model = os.environ.get("FEDTEXTGRAD_MODEL") or DEFAULT_MODEL
    return load_config(path).with_model_override(model)


@asynccontextmanager
async def make_graph() -> AsyncIterator[RoundGraph]:
    """The round graph over a fresh runtime, for one server request."""
    # Reads files and imports TextGrad (seconds, the first time): off the event loop.
    runtime = await asyncio.to_thread(FederationRuntime.create, studio_config())
    try:
        yield build_round_graph(runtime)
    finally:
        await runtime.aclose()
