"""Pictures of the round graph, drawn offline: Mermaid text, PNG (pygraphviz), ASCII (grandalf).

With ``xray``, ``client_optimizer`` is drawn expanded into the client subgraph
(``sample_minibatch`` -> ``textgrad_step``). LangGraph finds that subgraph although it is
invoked inside the node function: the compiled client graph is a variable the node's closure
reads, and ``get_graph(xray=True)`` draws the compiled graphs it finds there.
Nothing here calls the mermaid.ink web service (``draw_mermaid_png``).
"""

from __future__ import annotations

import importlib

from langchain_core.runnables.graph import Graph

from .config import ROLES, parse_config
from .data import ClientData, FederatedData
from .models import SIMULATED_MODEL, SimulatedChatModel
from .server import FederationRuntime, build_round_graph
from .server.graph import RoundGraph

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


def _qualified_names(graph: Graph) -> Graph:
    """A copy where subgraph nodes are named by their full id (``client_optimizer:textgrad_step``),
    so PNG and ASCII pictures show which subgraph each belongs to."""
    nodes = {node_id: node._replace(name=node_id) if ":" in node_id else node for node_id, node in graph.nodes.items()}
    return Graph(nodes=nodes, edges=graph.edges)


def round_graph_mermaid(*, xray: bool = False) -> str:
    """Mermaid flowchart text of the round graph; render it with any Mermaid viewer."""
    return _drawable(xray).draw_mermaid()


def round_graph_png(*, xray: bool = False) -> bytes:
    """PNG image of the round graph, laid out by Graphviz (pygraphviz, in the ``viz`` extra)."""
    _require("pygraphviz", "drawing a PNG")
    return _qualified_names(_drawable(xray)).draw_png(None)


def round_graph_ascii(*, xray: bool = False) -> str:
    """The round graph as ASCII art (grandalf, in the ``viz`` extra)."""
    _require("grandalf", "drawing ASCII art")
    return _qualified_names(_drawable(xray)).draw_ascii()
