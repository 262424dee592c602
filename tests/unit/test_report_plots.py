"""The report's plots hide no data: legends sit outside the axes, clear of every marker."""

from __future__ import annotations

from typing import Any

import pytest
from matplotlib.axes import Axes
from matplotlib.transforms import Bbox

from fedtextgrad_graph.report import _validation_figure

# (baseline, validation accuracy per round, best round): a run that stays low (best at the last
# round, where a lower-right legend sat) and one that stays high (best at the first round)
RUNS = {
    "low accuracy": (0.05, [0.08, 0.1, 0.12, 0.15], 4),
    "high accuracy": (0.9, [0.97, 0.95, 0.96], 1),
    "best is the baseline": (0.4, [0.3, 0.35], 0),
}


def _marker_box(ax: Axes, x: float, y: float, size_points: float) -> Bbox:
    """The display box a marker of ``size_points`` covers, centred on data point (x, y)."""
    centre_x, centre_y = ax.transData.transform((x, y))
    half = size_points / 2 * ax.figure.dpi / 72
    return Bbox([[centre_x - half, centre_y - half], [centre_x + half, centre_y + half]])


@pytest.mark.parametrize("run", list(RUNS), ids=list(RUNS))
def test_validation_legend_hides_neither_the_best_marker_nor_any_data(run: str) -> None:
    baseline, accuracies, best_round = RUNS[run]
    history: list[dict[str, Any]] = [{"round": i, "validation_accuracy": a} for i, a in enumerate(accuracies, start=1)]
    figure = _validation_figure(history, baseline, best_round)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    (ax,) = figure.axes
    legend = ax.get_legend()
    assert legend is not None
    legend_box = legend.get_window_extent(renderer)
    best = ([baseline] + accuracies)[best_round]
    assert not legend_box.overlaps(_marker_box(ax, best_round, best, 16))  # the star is 16 points
    for x, y in enumerate([baseline, *accuracies]):
        assert not legend_box.overlaps(_marker_box(ax, x, y, 8))
    assert not legend_box.overlaps(ax.get_window_extent(renderer))  # outside the axes: nothing plotted is hidden
    assert all(not legend_box.overlaps(text.get_window_extent(renderer)) for text in ax.texts)  # the best score's label
    assert figure.bbox.contains(legend_box.x1 - 1, legend_box.y1 - 1)  # and not cut off the image
