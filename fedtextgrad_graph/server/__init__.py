"""The server side: the round graph, evaluation, convergence, and the server's runtime."""

from __future__ import annotations

from .graph import build_round_graph, initial_state, select_clients
from .runtime import FederationRuntime

__all__ = ["FederationRuntime", "build_round_graph", "initial_state", "select_clients"]
