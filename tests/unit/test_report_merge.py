"""Each round's merge in the report (table and surprisal plot) and in ``status``'s line."""

from __future__ import annotations

from typing import Any

from fedtextgrad_graph.cli.status import merge_line
from fedtextgrad_graph.report import _surprisal_figure
from fedtextgrad_graph.report_merge import merge_html


def _merge(round: int, sentences: list[float], **changes: Any) -> dict[str, Any]:
    merge = {
        "strategy": "uid", "units": 5, "covered": 4, "coverage": 0.8, "missing": ["Check <b>twice</b>."],
        "estimator": "compression", "uid_score": 0.25 + round / 100, "concat_uid_score": 0.3, "length_ratio": 1.25,
        "repairs": 2, "fallback": False, "met_targets": False,
        "surprisal": {"unit": "bits/word", "sentences": sentences, "mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0},
    }  # fmt: skip
    return {"round": round, "merge": merge | changes}


HISTORY = [_merge(1, [30.0, 20.0, 25.0]), {"round": 2, "all_screened_out": True}, _merge(3, [30.0, 20.0, 25.0, 18.0], fallback=True, missing=[])]


def test_the_surprisal_plot_has_one_line_per_merged_round_and_its_legend_outside():
    figure = _surprisal_figure(HISTORY)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    (ax,) = figure.axes
    assert [line.get_label() for line in ax.get_lines()] == ["round 1 (UID 0.26)", "round 3 (UID 0.28)"]
    assert list(ax.get_lines()[1].get_ydata()) == [30.0, 20.0, 25.0, 18.0]
    legend = ax.get_legend()
    assert legend is not None
    box = legend.get_window_extent(renderer)
    assert not box.overlaps(ax.get_window_extent(renderer)) and figure.bbox.contains(box.x1 - 1, box.y1 - 1)


def test_the_merge_table_shows_each_merged_round_escaped():
    page = merge_html({"history": HISTORY})
    assert page.count("<tr><td>") == 2 and "<td>0.80 (4/5)</td>" in page
    assert "Check &lt;b&gt;twice&lt;/b&gt;." in page and "<b>twice" not in page
    assert "<td>yes</td><td>no</td>" in page  # round 3 fell back, and missed a target
    assert merge_html({"history": [{"round": 1}]}) == ""


def test_the_status_line_names_coverage_uid_length_repairs_fallback_and_missing():
    line = merge_line(_merge(3, [1.0], fallback=True)["merge"])
    assert line == (
        "merge (uid): coverage 0.80 (4/5 instructions), UID score 0.280 (concatenation 0.300; compression), "
        "length 1.25x the longest client prompt, 2 repairs, fell back to the deduplicated concatenation, "
        "targets missed; missing: Check <b>twice</b>."
    )
    assert merge_line(_merge(1, [1.0], repairs=0, met_targets=None, missing=[])["merge"]).endswith("0.300; compression), length 1.25x the longest client prompt")


def test_the_status_merge_table_fits_80_columns_with_a_row_per_merged_round(monkeypatch):
    from rich.console import Console

    from fedtextgrad_graph.cli import view
    from fedtextgrad_graph.cli.scores import MERGE_LEGEND, merge_table

    table = merge_table(HISTORY)
    assert table is not None and merge_table([{"round": 1}]) is None
    for width in (80, 50):
        console = Console(width=width, record=True, soft_wrap=True)
        monkeypatch.setattr(view, "console", console)
        view.print_table(table, MERGE_LEGEND)
        text = console.export_text()
        rows = [line for line in text.splitlines() if line.strip().startswith(("1 ", "3 ", "round"))]
        assert "…" not in text
        if width == 80:
            assert max(len(line) for line in rows) <= 80 and len(rows) == 3  # header, rounds 1 and 3
            assert "0.80" in rows[1] and "missed" in rows[1] and "yes" in rows[2]
        else:  # too narrow for the table: one labelled line per round
            assert [line.split(":")[0] for line in rows] == ["  round 1", "  round 3"]
