"""The server side: the round graph, upload screens, evaluation, convergence, and the server's runtime."""

from __future__ import annotations

from .graph import build_round_graph, initial_state, select_clients
from .runtime import FederationRuntime
from .screening import ScreenContext, ScreenResult, UploadScreen, register_screen, screen_names

__all__ = [
    "FederationRuntime",
    "ScreenContext",
    "ScreenResult",
    "UploadScreen",
    "build_round_graph",
    "initial_state",
    "register_screen",
    "screen_names",
    "select_clients",
]
