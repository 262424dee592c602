"""The round graph as plain ASCII text, read top to bottom, with an arrowhead at every edge end.

Nodes are stacked in flow order, one ``[ name ]`` per row. An edge to the next node down is a
short ``|`` ending in ``v``. Every other edge runs along its own rail on the right: it leaves its
source with ``-``, runs up (``^``, a loop) or down (``v``) the rail, and enters its target with
``<`` and its label. A node's loop onto itself is written on its row:
``[ node ] -- label --> [ node ]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._flow import Flow, FlowEdge

_GAP = 2  # connector rows between two nodes
_RAIL_SPACING = 3


@dataclass(frozen=True)
class _Rail:
    edge: FlowEdge
    top: int  # first and last row of the rail (source and target rows, in either order)
    bottom: int
    column: int


def _row(index: int) -> int:
    return index * (_GAP + 1)


def _box(node: str) -> str:
    return f"[ {node} ]"


def draw_text(flow: Flow) -> str:
    """Text art of ``flow``: nodes top to bottom, edges with arrowheads, loops on rails going up."""
    position = {node: i for i, node in enumerate(flow.nodes)}
    adjacent = [e for e in flow.edges if not e.loop and position[e.target] == position[e.source] + 1]
    own = [e for e in flow.edges if e.source == e.target]
    railed = [e for e in flow.edges if e not in adjacent and e not in own]
    height = _row(len(flow.nodes) - 1) + 1
    lines = [""] * height
    for node, i in position.items():
        lines[_row(i)] = _box(node)
    for edge in own:
        lines[_row(position[edge.source])] += f" -- {edge.label} --> {_box(edge.source)}" if edge.label else f" --> {_box(edge.source)}"
    for edge in adjacent:
        below = _row(position[edge.source])
        lines[below + 1] = "  |" + (f"  {edge.label}" if edge.label else "")
        lines[below + 2] = "  v"
    # a railed edge is labelled where it arrives, after its ``<``
    labels: dict[int, list[str]] = {}
    for edge in railed:
        if edge.label:
            labels.setdefault(_row(position[edge.target]), []).append(edge.label)
    row_labels = {row: " / ".join(texts) for row, texts in labels.items()}
    arrivals = {_row(position[edge.target]) for edge in railed}  # rows entered from a rail: ``<``
    starts = [len(line) + 1 + (row in arrivals) for row, line in enumerate(lines)]  # where a row's run starts
    ends = [starts[row] + (len(f"-- {row_labels[row]} ") if row in row_labels else 0) for row in range(len(lines))]
    base = max(ends, default=0) + 2
    # the shortest rails run nearest the nodes, so nested loops do not cross
    spans = sorted(railed, key=lambda e: abs(position[e.target] - position[e.source]))
    rails: list[_Rail] = []
    for k, edge in enumerate(spans):
        top, bottom = sorted((_row(position[edge.source]), _row(position[edge.target])))
        rails.append(_Rail(edge, top, bottom, base + k * _RAIL_SPACING))
    width = max((r.column for r in rails), default=0) + 1
    grid = [list(line.ljust(width)) for line in lines]
    for rail in rails:  # vertical runs first: a horizontal run crossing one leaves it intact
        for row in range(rail.top + 1, rail.bottom):
            grid[row][rail.column] = "|"
        going_up = position[rail.edge.target] < position[rail.edge.source]
        grid[rail.top + 1 if going_up else rail.bottom - 1][rail.column] = "^" if going_up else "v"
    for rail in rails:
        for node in (rail.edge.source, rail.edge.target):
            row = _row(position[node])
            _horizontal(grid[row], starts[row], rail.column, label=row_labels.get(row))
    for row in arrivals:
        grid[row][starts[row] - 1] = "<"
    return "\n".join("".join(cells).rstrip() for cells in grid) + "\n"


def _horizontal(cells: list[str], start: int, column: int, *, label: str | None) -> None:
    """Draw ``-`` from ``start`` to the rail at ``column`` (a ``+``), with ``label`` near the start."""
    text = f"-- {label} " if label else ""
    for x in range(start, column):
        if cells[x] in ("|", "^", "v", "+"):
            continue  # another rail crosses here
        offset = x - start
        cells[x] = text[offset] if offset < len(text) else "-"
    cells[column] = "+"
