"""The run report: plots and a self-contained HTML page from a run's state, finished or not."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from fedtextgrad_graph import SimulatedChatModel, initial_state, load_config, run_federated
from fedtextgrad_graph.report import word_diff_html, write_report

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ["validation.png", "client_train.png", "prompt_length.png", "updates.png", "surprisal.png"]


@pytest.fixture
async def finished_state(make_config) -> dict[str, Any]:
    """The final state of a completed 2-round, 3-client simulated run."""
    return await run_federated(load_config(make_config(clients=3, rounds=2, local_steps=2)), run_id="r", models=SIMULATED)


def _in_progress(state: dict[str, Any], uploaded: list[str]) -> dict[str, Any]:
    """``state`` as if it were interrupted in its last round, after ``uploaded`` had uploaded."""
    partial = copy.deepcopy(state)
    last = partial["history"].pop()
    partial.update(
        round=last["round"],
        selected_clients=last["clients"],
        global_prompt=partial["history"][-1]["global_prompt"],
        client_updates={
            cid: {"client_id": cid, "round": last["round"], "prompt": last["client_prompts"][cid], **last["client_metrics"][cid]}
            for cid in uploaded
        },
        round_metrics={},
        stop_reason=None,
        test_accuracy=None,
    )
    return partial


def test_report_of_a_finished_run(finished_state, tmp_path: Path):
    files = write_report(finished_state, tmp_path / "report", run_id="r")
    assert [p.name for p in files.plots] == PLOTS
    for plot in files.plots:
        assert plot.read_bytes().startswith(PNG_SIGNATURE) and plot.stat().st_size > 5000
    page = files.html.read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 5
    assert "SIMULATED MODEL" in page and ">completed<" in page and "max_rounds" in page
    table = re.search(r'<table id="rounds">.*?</table>', page, re.DOTALL)
    assert table is not None
    for record in finished_state["history"]:
        assert f"<td>{record['round']}" in table.group(0)
        assert f'id="round-{record["round"]}"' in page
        for prompt in record["client_prompts"].values():
            assert prompt.replace("'", "&#x27;") in page
    assert "<ins>" in page  # the simulated optimizer only adds sentences


def test_prompts_are_escaped_and_diffed(finished_state, tmp_path: Path):
    state = copy.deepcopy(finished_state)
    last = state["history"][-1]
    last["global_prompt"] = last["global_prompt"].replace("Think step by step.", "Fill in {answer} as <b>bold</b> & check.")
    last["client_prompts"]["client-1"] = "Use {braces} and <script>alert(1)</script>."
    page = write_report(state, tmp_path, run_id="r").html.read_text(encoding="utf-8")
    assert "Use {braces} and &lt;script&gt;alert(1)&lt;/script&gt;." in page
    assert "<script>" not in page and "<b>" not in page
    assert "<del>Think step by step.</del><ins>Fill in {answer}" in page
    assert "{answer} as &lt;b&gt;bold&lt;/b&gt; &amp; check." in page


def test_the_page_is_self_contained(finished_state, tmp_path: Path):
    page = write_report(finished_state, tmp_path, run_id="r").html.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(script|link|iframe)\b|href=|url\(|@import", page)
    assert not re.search(r'src="(?!data:image/png;base64,)', page)


def test_word_diff():
    assert word_diff_html("Think step by step.", "Think slowly, step by step.") == "Think<ins> slowly,</ins> step by step."
    assert word_diff_html("a b c", "a c") == "a <del>b </del>c"
    assert word_diff_html("x < y", "x > y") == "x <del>&lt;</del><ins>&gt;</ins> y"
    rewrite = word_diff_html("Check the sum and the answer. Done.", "Verify the total and the units. Done.")
    assert rewrite == "<del>Check the sum and the answer.</del><ins>Verify the total and the units.</ins> Done."


def test_report_of_an_interrupted_round(finished_state, tmp_path: Path):
    state = _in_progress(finished_state, uploaded=["client-1", "client-2"])
    files = write_report(state, tmp_path, run_id="r")
    page = files.html.read_text(encoding="utf-8")
    assert ">incomplete<" in page and "fedtextgrad-graph resume r" in page
    assert "Round 2 (in progress)" in page and "2 (in progress)" in page
    in_progress = page[page.index('id="round-2"') :]
    for cid in ("client-1", "client-2"):
        assert finished_state["history"][1]["client_prompts"][cid].replace("'", "&#x27;") in in_progress
    assert "not uploaded yet" in in_progress and "not aggregated yet" in in_progress
    assert len(files.plots) == 5  # the finished round is plotted


def test_report_before_any_round_finished(make_config, tmp_path: Path):
    state = {**initial_state(load_config(make_config())), "round": 1, "selected_clients": ["client-1", "client-2"]}
    files = write_report(state, tmp_path, run_id="fresh")
    page = files.html.read_text(encoding="utf-8")
    assert files.plots == () and "No round has finished yet" in page
    assert "Round 1 (in progress)" in page and "Started from the initial prompt" in page


def test_missing_matplotlib_names_the_extra(finished_state, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'fedtextgrad-graph\[viz\]'"):
        write_report(finished_state, tmp_path, run_id="r")


def test_screened_out_uploads_are_shown_with_the_reason_and_cut(finished_state, tmp_path: Path):
    state = copy.deepcopy(finished_state)
    first, last = state["history"]
    first["client_prompts"]["client-3"] = "x" * 100_000
    first["screened_out"] = {"client-3": "size: 100000 chars, over the cap of 4000 <&>"}
    last["screened_out"] = {"client-1": "validation: 0.00", "client-2": "validation: 0.10"}
    last["all_screened_out"] = True
    page = write_report(state, tmp_path, run_id="r").html.read_text(encoding="utf-8")
    table = re.search(r'<table id="rounds">.*?</table>', page, re.DOTALL).group(0)
    assert '<div class="screened">screened out: client-3: size: 100000 chars, over the cap of 4000 &lt;&amp;&gt;</div>' in table
    assert "client-1: validation: 0.00<br>client-2: validation: 0.10<br>every upload left out" in table
    assert page.count('<article class="screened-out">') == 3
    assert "x" * 2000 + "<em>… (98000 more characters)</em>" in page and "x" * 2001 not in page
