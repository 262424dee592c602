"""Pictures of the round graph: every format offline, the client subgraph expanded with xray."""

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
    assert "client_optimizer\\3atextgrad_step -.-> client_optimizer\\3asample_minibatch" in text  # the local-step loop
    for node in set(ROUND_NODES) - {"client_optimizer"}:
        assert f"\t{node}({node})" in text


def test_ascii_names_the_nodes():
    plain, xray = round_graph_ascii(), round_graph_ascii(xray=True)
    for node in ROUND_NODES:
        assert f"| {node} |" in plain
    assert not any(node in plain for node in CLIENT_NODES)
    for node in CLIENT_NODES:
        assert f"| client_optimizer:{node} |" in xray


def test_png_is_a_png():
    plain, xray = round_graph_png(), round_graph_png(xray=True)
    assert plain.startswith(PNG_SIGNATURE) and xray.startswith(PNG_SIGNATURE)
    assert plain != xray


@pytest.mark.parametrize(("module", "draw"), [("pygraphviz", round_graph_png), ("grandalf", round_graph_ascii)])
def test_missing_viz_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch, module, draw):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(DrawingDependencyError, match=r"pip install 'fedtextgrad-graph\[viz\]'"):
        draw()
