"""Pictures of the round graph, drawn offline and top to bottom: Mermaid text, PNG
(pygraphviz), ASCII text.

Every picture starts at ``__start__`` at the top and ends at ``__end__`` at the bottom; loops
(the next round, a quorum retry, the next local step) point back up and are labelled, as are the
other branches. With ``xray``, ``client_optimizer`` is drawn expanded into the client subgraph
(``sample_minibatch`` -> ``textgrad_step``). LangGraph finds that subgraph although it is
invoked inside the node function: the compiled client graph is a variable the node's closure
reads, and ``get_graph(xray=True)`` draws the compiled graphs it finds there.
Nothing here calls the mermaid.ink web service (``draw_mermaid_png``).
"""

from __future__ import annotations

import importlib

from langchain_core.runnables.graph import Graph

from ..config import ROLES, parse_config
from ..data import ClientData, FederatedData
from ..models import SIMULATED_MODEL, SimulatedChatModel
from ..server import FederationRuntime, build_round_graph
from ..server.graph import RoundGraph
from ._flow import labelled, top_to_bottom
from ._graphviz import draw_png
from ._text import draw_text

__all__ = [
    "DrawingDependencyError",
    "build_display_graph",
    "round_graph_ascii",
    "round_graph_mermaid",
    "round_graph_png",
]

_VIZ_INSTALL = "pip install 'fedtextgrad-graph[viz]'"

_DISPLAY_CONFIG = {
    "run": {"name": "display"},
    "tasks": {"task": {"format": "bbh", "path": "unused.json"}},
    "federation": {"num_clients": 1},
    "models": {"model": SIMULATED_MODEL},
}


class DrawingDependencyError(ImportError):
    """An optional package needed for a picture format is not installed."""


def build_display_graph() -> RoundGraph:
    """The round graph, compiled for drawing only: a placeholder config, no data, and the
    simulated model for every role. Its structure is that of every run; it cannot run."""
    config = parse_config(_DISPLAY_CONFIG, source="display config")
    models = {role: SimulatedChatModel() for role in ROLES}
    data = FederatedData(clients={"client-1": ClientData("task", [], [])}, tasks={})
    runtime = FederationRuntime.create(config, data=data, models=models)
    graph = build_round_graph(runtime)
    runtime.close()  # its thread pool is never used: the graph is only drawn
    return graph


def _drawable(xray: bool) -> Graph:
    return build_display_graph().get_graph(xray=xray)


def _require(module: str, purpose: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise DrawingDependencyError(f"{purpose} needs {module} ({exc}); install it with: {_VIZ_INSTALL}") from exc


def round_graph_mermaid(*, xray: bool = False) -> str:
    """Mermaid flowchart text of the round graph (``graph TD``, branches labelled); render it
    with any Mermaid viewer."""
    return labelled(_drawable(xray)).draw_mermaid()


def round_graph_png(*, xray: bool = False) -> bytes:
    """PNG image of the round graph, laid out top to bottom by Graphviz (pygraphviz, in the
    ``viz`` extra); with ``xray`` the client subgraph is a box where the round fans out."""
    _require("pygraphviz", "drawing a PNG")
    return draw_png(top_to_bottom(_drawable(xray)))


def round_graph_ascii(*, xray: bool = False) -> str:
    """The round graph as ASCII text, top to bottom: ``v`` marks the next step, and every other
    edge (loops going up ``^``, skips going down) runs on a rail into its target's ``<``."""
    return draw_text(top_to_bottom(_drawable(xray)))
