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

    A depth-first walk from ``__start__`` that never steps back to a node nearer the start (by
    fewest edges) lists the nodes in reverse post-order: a topological order of the graph
    without its loops, ``__start__`` first and ``__end__`` last. A loop is an edge that points
    up that list (the retry of missing clients, the next round, the next repair try).
    """
    successors: dict[str, list[str]] = {node: [] for node in graph.nodes}
    for edge in graph.edges:
        successors[edge.source].append(edge.target)
    depth = {START: 0}  # fewest edges from the start
    frontier = [START]
    while frontier:
        reached = []
        for node in frontier:
            for target in successors[node]:
                if target not in depth:
                    depth[target] = depth[node] + 1
                    reached.append(target)
        frontier = reached
    finished: list[str] = []
    seen: set[str] = set()

    def walk(node: str) -> None:
        seen.add(node)
        for target in successors[node]:
            if target not in seen and depth.get(target, 0) >= depth.get(node, 0):
                walk(target)
        finished.append(node)

    walk(START)
    for node in graph.nodes:  # nodes the start cannot reach still get drawn
        if node not in seen:
            walk(node)
    order = tuple(reversed(finished))
    position = {node: i for i, node in enumerate(order)}
    edges = tuple(
        FlowEdge(
            source=edge.source,
            target=edge.target,
            label=edge_label(edge.source, edge.target),
            conditional=edge.conditional,
            loop=position[edge.target] <= position[edge.source],
        )
        for edge in sorted(graph.edges, key=lambda e: (position[e.source], position[e.target]))
    )
    return Flow(nodes=order, edges=edges)


def labelled(graph: Graph) -> Graph:
    """A copy of ``graph`` whose branch edges carry their meaning as the edge label."""
    edges = [edge._replace(data=edge_label(edge.source, edge.target) or edge.data) for edge in graph.edges]
    return Graph(nodes=dict(graph.nodes), edges=edges)
