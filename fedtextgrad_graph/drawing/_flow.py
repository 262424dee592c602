"""The round graph as a flow to draw top to bottom: nodes in order, loops found, edges labelled."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.runnables.graph import Graph

START = "__start__"
END = "__end__"
SUBGRAPH_SEPARATOR = ":"

# What each branch of the round graph means. Keys are (source, target); an edge into or out of
# the client subgraph is also looked up by the subgraph's name (client_optimizer).
EDGE_LABELS: dict[tuple[str, str], str] = {
    ("broadcast", "client_optimizer"): "one task per client",
    ("collect", "screen"): "quorum met",
    ("collect", "client_optimizer"): "too few updates: retry",
    ("check_convergence", "broadcast"): "next round",
    ("check_convergence", "final_test"): "stop",
    ("check_convergence", END): "stop, no test",
    ("client_optimizer:textgrad_step", "client_optimizer:sample_minibatch"): "next local step",
    ("client_optimizer:textgrad_step", "client_optimizer:__end__"): "last local step",
    ("aggregate", "repair"): "targets missed",
    ("aggregate", "evaluate"): "merged",
    ("repair", "repair"): "next repair try",
    ("repair", "evaluate"): "best candidate or fallback",
}


@dataclass(frozen=True)
class FlowEdge:
    """One edge to draw: ``loop`` when it goes back up (to a node drawn above its source)."""

    source: str
    target: str
    label: str | None
    conditional: bool
    loop: bool


@dataclass(frozen=True)
class Flow:
    """Nodes from start to end (every edge that is not a loop points down this list), and edges."""

    nodes: tuple[str, ...]
    edges: tuple[FlowEdge, ...]


def _outer(node: str) -> str:
    return node.split(SUBGRAPH_SEPARATOR, 1)[0]


def edge_label(source: str, target: str) -> str | None:
    """The meaning of an edge of the round graph, if it is a branch worth naming."""
    return EDGE_LABELS.get((source, target)) or EDGE_LABELS.get((_outer(source), _outer(target)))


def top_to_bottom(graph: Graph) -> Flow:
    """Order ``graph`` from ``__start__`` to ``__end__`` and mark its loops.

    A depth-first walk from ``__start__`` finds the loops (edges back to a node still being
    walked); the nodes are listed in reverse post-order of that walk, a topological order of the
    graph without its loops, so ``__start__`` comes first and ``__end__`` last.
    """
    successors: dict[str, list[str]] = {node: [] for node in graph.nodes}
    for edge in graph.edges:
        successors[edge.source].append(edge.target)
    loops: set[tuple[str, str]] = set()
    finished: list[str] = []
    on_path: set[str] = set()
    seen: set[str] = set()

    def walk(node: str) -> None:
        seen.add(node)
        on_path.add(node)
        for target in successors[node]:
            if target in on_path:
                loops.add((node, target))
            elif target not in seen:
                walk(target)
        on_path.discard(node)
        finished.append(node)

    walk(START)
    for node in graph.nodes:  # nodes the start cannot reach still get drawn
        if node not in seen:
            walk(node)
    order = tuple(reversed(finished))
    edges = tuple(
        FlowEdge(
            source=edge.source,
            target=edge.target,
            label=edge_label(edge.source, edge.target),
            conditional=edge.conditional,
            loop=(edge.source, edge.target) in loops,
        )
        for edge in sorted(graph.edges, key=lambda e: (order.index(e.source), order.index(e.target)))
    )
    return Flow(nodes=order, edges=edges)


def labelled(graph: Graph) -> Graph:
    """A copy of ``graph`` whose branch edges carry their meaning as the edge label."""
    edges = [edge._replace(data=edge_label(edge.source, edge.target) or edge.data) for edge in graph.edges]
    return Graph(nodes=dict(graph.nodes), edges=edges)
