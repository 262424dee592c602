"""What the command line prints about screened uploads: the live view and the run summary."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from fedtextgrad_graph.cli import view
from fedtextgrad_graph.config import parse_config
from fedtextgrad_graph.runs import RunEvent


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Console:
    console = Console(record=True, width=200, force_terminal=False)
    monkeypatch.setattr(view, "console", console)
    return console


def test_live_view_shows_left_out_clients_and_a_round_that_kept_nothing(captured, tmp_path):
    config = parse_config({"tasks": {"t": {"format": "bbh", "path": "x.json"}}, "federation": {"num_clients": 2}})
    with view.RunView(tmp_path, config) as live:
        live.event(RunEvent("screened", {"screened_out": {"client-[2]": "validation: accuracy 0.00 [x]"}, "scores": {}}))
        live.event(RunEvent("aggregated", {"prompt_chars": 10, "prompt_tokens": 2, "aggregation": "uid", "all_screened_out": True}))
    text = captured.export_text()
    assert "client-[2] screened out: validation: accuracy 0.00 [x]" in text
    assert "every upload screened out: the global prompt stays as it was" in text and "aggregated (uid)" not in text
    logged = [json.loads(line)["event"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert logged == ["screened", "aggregated"]


def test_summary_lists_left_out_clients_per_round(captured, tmp_path):
    record = {
        "round": 1, "clients": ["a", "b"], "client_metrics": {}, "validation_accuracy": 0.5, "prompt_chars": 1,
        "prompt_tokens": 1, "llm_calls": 3, "screened_out": {"a": "size: 100000 chars", "b": "validation: 0.00"},
        "all_screened_out": True,
    }
    payload = {
        "run_id": "r", "status": "completed", "history": [record], "simulated": False, "test_accuracy": None,
        "stop_reason": "max_rounds", "best_round": 0, "best_validation_accuracy": 0.5, "models": {"task": "simulated"},
    }
    view.print_summary(payload, tmp_path)
    text = captured.export_text()
    assert "round 1: a screened out (size: 100000 chars)" in text
    assert "round 1: b screened out (validation: 0.00)" in text
    assert "round 1: every upload screened out; the global prompt stayed as it was" in text


def test_summary_of_an_unfinished_run_says_nothing_that_is_not_there(captured, tmp_path):
    record = {
        "round": 1, "clients": ["a"], "client_metrics": {}, "validation_accuracy": 0.5, "prompt_chars": 1,
        "prompt_tokens": 1, "llm_calls": 3,
    }
    payload = {
        "run_id": "r", "status": "incomplete", "history": [record], "simulated": False, "test_accuracy": None,
        "stop_reason": None, "best_round": None, "best_validation_accuracy": None, "best_prompt": None, "rounds": 1,
        "models": {"task": "mixed: simulated (round 1), openai:x (round 2)"},
    }
    view.print_summary(payload, tmp_path)
    text = captured.export_text()
    assert "models: task: mixed: simulated (round 1), openai:x (round 2)" in text
    assert "stop reason: none yet (the run has not finished); no best round yet" in text
    assert "None" not in text and "results:" not in text and "best prompt" not in text


def test_library_warnings_show_as_warning_lines_only_while_asked(monkeypatch: pytest.MonkeyPatch):
    import logging

    errors = Console(record=True, width=200, force_terminal=False)
    monkeypatch.setattr(view, "errors", errors)
    logger = logging.getLogger("fedtextgrad_graph.models.gateway")
    with view.warnings_shown():
        logger.warning("endpoint %s unreachable", "http://127.0.0.1:9/v1")
        logger.info("not shown")
    logger.warning("after: not through the CLI's handler")
    assert errors.export_text().splitlines() == ["warning: endpoint http://127.0.0.1:9/v1 unreachable"]
    assert logging.getLogger("fedtextgrad_graph").propagate
