"""The round graph as a Graphviz graph (pygraphviz): top to bottom, loops as back edges."""

from __future__ import annotations

import importlib
from typing import Any

from ._flow import END, START, SUBGRAPH_SEPARATOR, Flow

_FONT = "Helvetica"
_NODE = {"shape": "box", "style": "rounded,filled", "fillcolor": "#f2f0ff", "color": "#6c5ce7", "fontname": _FONT}
_ENDS = {START: "#e0f0ff", END: "#bfb6fc"}
_SUBGRAPH_ENDS = {"shape": "ellipse", "style": "filled", "fillcolor": "#ffffff", "fontsize": "10", "fontname": _FONT}


def build_agraph(flow: Flow) -> Any:
    """A ``pygraphviz.AGraph`` drawing ``flow`` top to bottom (``rankdir=TB``).

    ``__start__`` is on the top rank and ``__end__`` on the bottom one; a subgraph's nodes
    (``client_optimizer:...``) sit in a box where the round fans out to them; loops are drawn as
    back edges that do not constrain the ranks, so they never pull a node above its predecessor.
    """
    pygraphviz = importlib.import_module("pygraphviz")  # the viz extra; untyped, so held as Any
    viz = pygraphviz.AGraph(directed=True, strict=False, rankdir="TB", nodesep="0.4", ranksep="0.45")
    viz.graph_attr.update(fontname=_FONT, newrank="true")
    clusters: dict[str, Any] = {}
    for node in flow.nodes:
        outer, _, inner = node.partition(SUBGRAPH_SEPARATOR)
        if not inner:
            viz.add_node(node, label=node, **{**_NODE, "fillcolor": _ENDS.get(node, _NODE["fillcolor"])})
            continue
        if outer not in clusters:
            clusters[outer] = viz.add_subgraph(
                name=f"cluster_{outer}",
                label=f"{outer} (one per selected client)",
                style="rounded,dashed",
                color="#888888",
                fontname=_FONT,
                fontsize="12",
            )
        style = _SUBGRAPH_ENDS if inner in (START, END) else _NODE
        clusters[outer].add_node(node, label=inner, **style)
    if START in flow.nodes:
        viz.add_subgraph([START], name="start_rank", rank="min")
    if END in flow.nodes:
        viz.add_subgraph([END], name="end_rank", rank="max")
    for edge in flow.edges:
        attrs: dict[str, str] = {"fontname": _FONT, "fontsize": "11", "style": "dashed" if edge.conditional else "solid"}
        if edge.label:
            attrs["label"] = f" {edge.label}"
        if edge.loop:
            attrs.update(constraint="false", tailport="e", headport="e", color="#6c5ce7", fontcolor="#6c5ce7")
        viz.add_edge(edge.source, edge.target, **attrs)
    return viz


def draw_png(flow: Flow) -> bytes:
    """PNG bytes of ``flow`` laid out by Graphviz ``dot``."""
    viz = build_agraph(flow)
    try:
        png: bytes = viz.draw(format="png", prog="dot")
        return png
    finally:
        viz.close()
