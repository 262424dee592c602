"""A site on its own: SITE.toml, training and scoring on its data, its last result per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedtextgrad_graph import ConfigError, DataError
from fedtextgrad_graph.server.graph import train_request
from fedtextgrad_graph.site.config import load_site_config
from fedtextgrad_graph.site.runner import RequestRefused, SiteRunner
from fedtextgrad_graph.wire import ClientTask, EvaluateRequest

from ..conftest import write_bbh

SITE = """
[site]
client_id = "site-a"
task = "counting"

[task]
format = "bbh"
path = "data.json"
split = { train = [0, 12], validation = [12, 18], test = [18, 24] }

[models]
model = "simulated"
"""


@pytest.fixture
def site_toml(tmp_path: Path) -> Path:
    write_bbh(tmp_path / "data.json", n=24)
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    return path


def _calls(runner: SiteRunner) -> list[dict]:
    return [json.loads(line) for line in runner.events_path.read_text().splitlines()]


def _request(client_id: str = "site-a", task: str = "counting", round: int = 1):
    from fedtextgrad_graph.config import parse_config

    config = parse_config(
        {"tasks": {task: {}}, "federation": {"clients": [{"id": client_id, "task": task}], "partition": "heterogeneous"}},
        source="test",
    )
    return train_request(config, ClientTask(client_id=client_id, round=round, global_prompt="Count. Answer: $VALUE"), run_id="run-1")


def test_site_file_errors_name_the_file_and_field(tmp_path, site_toml):
    bad = tmp_path / "bad.toml"
    bad.write_text(SITE.replace('client_id = "site-a"', 'client_id = "site-a"\ncolour = "blue"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.toml: site.colour: unknown field"):
        load_site_config(bad)
    bad.write_text(SITE.replace('client_id = "site-a"\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.toml: site.client_id: Field required"):
        load_site_config(bad)
    with pytest.raises(ConfigError, match="site file not found"):
        load_site_config(tmp_path / "nope.toml")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "site.toml").write_text(SITE, encoding="utf-8")  # data.json is not beside it
    with pytest.raises(DataError, match=r"elsewhere/data.json: data file not found"):
        SiteRunner(load_site_config(moved / "site.toml"))


def test_a_site_returns_its_finished_update_without_new_llm_calls(site_toml):
    runner = SiteRunner(load_site_config(site_toml))
    try:
        update = runner.train(_request())
        assert update["client_id"] == "site-a" and update["models"]["task"] == "simulated"
        paid = _calls(runner)
        assert len(paid) == update["llm_calls"] > 0
        assert {(c["run_id"], c["request"], c["round"]) for c in paid} == {("run-1", "train", 1)}
        assert runner.train(_request()) == update  # asked again (a resumed server): from the cache
        assert len(_calls(runner)) == len(paid)
        runner.train(_request(round=2))  # the next round is new work
        assert len(_calls(runner)) > len(paid)
        score = runner.evaluate(EvaluateRequest(run_id="run-1", client_id="site-a", round=None, prompt="p", split="test"))
        assert score["total"] == 6 and score["llm_calls"] == 6
    finally:
        runner.close()


def test_a_site_scores_only_the_requested_sample_and_logs_it_apart(site_toml):
    runner = SiteRunner(load_site_config(site_toml))
    try:
        sample = {"size": 4, "seed": "0:screen:1"}
        request = EvaluateRequest(run_id="run-1", client_id="site-a", round=1, prompt="p", split="validation", sample=sample)
        first, again = runner.evaluate(request), runner.evaluate(request)
        assert first == again and first["total"] == 4 and first["llm_calls"] == 4
        assert {c["request"] for c in _calls(runner)} == {"validation sample"}
    finally:
        runner.close()


def test_a_site_refuses_requests_for_another_client_or_task(site_toml):
    runner = SiteRunner(load_site_config(site_toml))
    try:
        with pytest.raises(RequestRefused, match="serves client 'site-a', not 'site-b'"):
            runner.train(_request(client_id="site-b"))
        with pytest.raises(RequestRefused, match="holds task 'counting'; the server asked for 'arithmetic'"):
            runner.train(_request(task="arithmetic"))
    finally:
        runner.close()

