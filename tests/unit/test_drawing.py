"""Pictures of the round graph: every format offline and top to bottom, the client subgraph
expanded with xray."""

from __future__ import annotations

import socket
import sys

import pytest
from langchain_core.runnables.graph import Graph

from fedtextgrad_graph.drawing import (
    DrawingDependencyError,
    build_display_graph,
    round_graph_ascii,
    round_graph_mermaid,
    round_graph_png,
)
from fedtextgrad_graph.drawing._flow import EDGE_LABELS, edge_label, top_to_bottom
from fedtextgrad_graph.drawing._graphviz import build_agraph

ROUND_NODES = ["baseline", "broadcast", "client_optimizer", "screen", "aggregate", "evaluate", "review", "check_convergence", "final_test"]
CLIENT_NODES = ["sample_minibatch", "textgrad_step"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection can be opened, and the mermaid.ink renderer fails if called."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("drawing tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(Graph, "draw_mermaid_png", refuse)


def test_display_graph_has_the_round_nodes_and_the_client_subgraph():
    graph = build_display_graph()
    assert set(ROUND_NODES) <= set(graph.nodes)
    assert [name for name, _ in graph.get_subgraphs()] == ["client_optimizer"]
    graph.validate()


def test_mermaid_plain_shows_client_optimizer_as_one_node():
    text = round_graph_mermaid()
    for node in ROUND_NODES:
        assert f"\t{node}({node})" in text
    assert not any(node in text for node in CLIENT_NODES)


def test_mermaid_xray_expands_client_optimizer():
    text = round_graph_mermaid(xray=True)
    assert "subgraph client_optimizer" in text
    for node in CLIENT_NODES:
        assert f"client_optimizer\\3a{node}({node})" in text
    # the local-step loop, labelled
    assert "client_optimizer\\3atextgrad_step -. &nbsp;next local step&nbsp; .-> client_optimizer\\3asample_minibatch" in text
    for node in set(ROUND_NODES) - {"client_optimizer"}:
        assert f"\t{node}({node})" in text


def test_mermaid_reads_top_down_with_the_loops_named():
    for text in (round_graph_mermaid(), round_graph_mermaid(xray=True)):
        assert "\ngraph TD;\n" in text
        assert "check_convergence -. &nbsp;next round&nbsp; .-> broadcast;" in text


def _drawn_graph(xray: bool) -> Graph:
    return build_display_graph().get_graph(xray=xray)


def test_every_edge_label_names_an_edge_of_the_round_graph():
    edges = {(e.source, e.target) for xray in (False, True) for e in _drawn_graph(xray).edges}
    named = {key for key in EDGE_LABELS if key in edges or any(edge_label(*edge) == EDGE_LABELS[key] for edge in edges)}
    assert named == set(EDGE_LABELS)  # a renamed node or edge fails here, not silently unlabelled


@pytest.mark.parametrize("xray", [False, True])
def test_flow_starts_at_start_ends_at_end_and_only_loops_point_up(xray: bool):
    flow = top_to_bottom(_drawn_graph(xray))
    assert flow.nodes[0] == "__start__" and flow.nodes[-1] == "__end__"
    position = {node: i for i, node in enumerate(flow.nodes)}
    loops = {(e.source, e.target) for e in flow.edges if e.loop}
    assert all(position[e.target] > position[e.source] for e in flow.edges if not e.loop)
    expected = {("check_convergence", "broadcast"), ("repair", "repair")}
    if xray:
        expected |= {("collect", "client_optimizer:__start__"), ("client_optimizer:textgrad_step", "client_optimizer:sample_minibatch")}
    else:
        expected |= {("collect", "client_optimizer")}
    assert loops == expected


def _ascii_rows(text: str) -> dict[str, int]:
    rows = {}
    for number, line in enumerate(text.splitlines()):
        if line.startswith("[ "):
            rows[line[2 : line.index(" ]")]] = number
    return rows


@pytest.mark.parametrize("xray", [False, True])
def test_ascii_reads_top_to_bottom_with_an_arrowhead_at_every_edge_end(xray: bool):
    text = round_graph_ascii(xray=xray)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = _ascii_rows(text)
    graph = _drawn_graph(xray)
    assert set(rows) == set(graph.nodes)
    assert min(rows, key=rows.__getitem__) == "__start__" and max(rows, key=rows.__getitem__) == "__end__"
    for edge in graph.edges:
        source, target = rows[edge.source], rows[edge.target]
        target_line = lines[target]
        box_end = target_line.index(" ]") + 2
        if target == source:
            assert target_line.startswith(f"[ {edge.target} ] -- next repair try --> [ {edge.target} ]"), edge  # onto itself, on its row
        elif target == source + 3 and lines[source + 1].startswith("  |"):
            assert lines[target - 1][:4].rstrip() == "  v", edge  # straight down into the next node
        else:
            assert target_line[box_end:].startswith(" <"), edge  # along a rail into the target
            step = 1 if target < source else -1  # the rail's arrowhead is next to the target
            head = "^" if target < source else "v"
            rails = [
                x
                for x in range(box_end, len(target_line))
                if target_line[x] == "+" and lines[target + step][x] == head and lines[source][x : x + 1] == "+"
            ]
            assert rails, edge  # a rail from the source's row, its arrowhead next to the target


def test_ascii_names_the_loops():
    plain, xray = round_graph_ascii(), round_graph_ascii(xray=True)
    # a railed edge is named where it arrives
    assert "[ broadcast ] <-- next round -" in plain
    assert "[ client_optimizer ] <-- too few updates: retry -" in plain
    assert "[ client_optimizer:sample_minibatch ] <-- next local step -" in xray
    assert "[ repair ] -- next repair try --> [ repair ]" in plain
    assert not any(node in plain for node in CLIENT_NODES)


def _graphviz_heights(xray: bool) -> dict[str, float]:
    viz = build_agraph(top_to_bottom(_drawn_graph(xray)))
    viz.layout(prog="dot")
    heights = {str(node): float(node.attr["pos"].split(",")[1]) for node in viz.nodes()}  # y grows upward
    viz.close()
    return heights


@pytest.mark.parametrize("xray", [False, True])
def test_png_layout_puts_start_on_top_and_end_at_the_bottom(xray: bool):
    heights = _graphviz_heights(xray)
    others = [y for node, y in heights.items() if node not in ("__start__", "__end__")]
    assert heights["__start__"] > max(others) and heights["__end__"] < min(others)
    spine = ["start", "broadcast", "collect", "screen", "aggregate", "evaluate", "review", "check_convergence"]
    assert [heights[node] for node in spine] == sorted((heights[node] for node in spine), reverse=True)
    assert heights["broadcast"] > heights["baseline"] > heights["collect"]  # scored alongside the first round's clients


def test_xray_png_draws_the_client_subgraph_where_the_round_fans_out():
    heights = _graphviz_heights(xray=True)
    inner = [y for node, y in heights.items() if node.startswith("client_optimizer:")]
    assert heights["broadcast"] > max(inner) and min(inner) > heights["collect"]
    assert heights["client_optimizer:sample_minibatch"] > heights["client_optimizer:textgrad_step"]
    viz = build_agraph(top_to_bottom(_drawn_graph(xray=True)))
    assert [sub.name for sub in viz.subgraphs() if sub.name.startswith("cluster_")] == ["cluster_client_optimizer"]
    viz.close()


def test_png_is_a_png():
    plain, xray = round_graph_png(), round_graph_png(xray=True)
    assert plain.startswith(PNG_SIGNATURE) and xray.startswith(PNG_SIGNATURE)
    assert plain != xray


def test_missing_viz_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pygraphviz", None)  # makes `import pygraphviz` raise ImportError
    with pytest.raises(DrawingDependencyError, match=r"pip install 'fedtextgrad-graph\[viz\]'"):
        round_graph_png()


def test_ascii_needs_no_extra(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "grandalf", None)
    monkeypatch.setitem(sys.modules, "pygraphviz", None)
    assert "[ __end__ ]" in round_graph_ascii()
