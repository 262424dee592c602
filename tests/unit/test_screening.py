"""Upload screens: the size cap, the validation rule, the pipeline, the registry, and the
validation sample scored on the server or federated on the other clients."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel, load_config
from fedtextgrad_graph.config import ConfigError, ScreeningConfig, parse_config
from fedtextgrad_graph.data import Example, sample_examples
from fedtextgrad_graph.server.comparison import compare_to_global
from fedtextgrad_graph.server.screening import (
    Comparison,
    PairedScore,
    ScreenContext,
    ScreenResult,
    SizeScreen,
    UploadScreen,
    ValidationScreen,
    create_screens,
    register_screen,
    screen_names,
    screen_uploads,
    validation_left_out,
)
from fedtextgrad_graph.transport.flower.messages import typed
from fedtextgrad_graph.wire import EvaluateRequest

from ..conftest import LatencyModel
from ..graph_node import in_graph_node

SIMULATED = {role: SimulatedChatModel() for role in ("task", "optimizer", "aggregator", "judge")}


async def _no_compare(prompts: Mapping[str, str]) -> Comparison:
    raise AssertionError("this screen must not score prompts")


def _context(global_prompt: str = "g" * 100, compare=_no_compare) -> ScreenContext:
    return ScreenContext(round=1, global_prompt=global_prompt, compare=compare)


# --- size ---------------------------------------------------------------------------------------


async def test_size_screen_leaves_out_a_100kb_upload():
    result = await SizeScreen(ratio=3.0, floor=4000).screen({"a": "ok " * 100, "b": "x" * 100_000}, _context())
    assert list(result.left_out) == ["b"]
    assert result.left_out["b"] == "100000 chars, over the cap of 4000 (3 x the global prompt's 100 chars, at least 4000)"
    assert result.llm_calls == 0


def test_size_cap_is_the_ratio_of_the_global_prompt_or_the_floor():
    screen = SizeScreen(ratio=3.0, floor=4000)
    assert screen.cap("g" * 100) == 4000  # a short prompt may still grow up to the floor
    assert screen.cap("g" * 3000) == 9000


async def test_size_screen_keeps_an_upload_at_the_cap():
    screen = SizeScreen(ratio=2.0, floor=10)
    result = await screen.screen({"at": "x" * 200, "over": "x" * 201}, _context("g" * 100))
    assert list(result.left_out) == ["over"]


# --- the validation rule ------------------------------------------------------------------------


def _scores(**correct: int) -> dict[str, PairedScore]:
    """Scores out of 20, with the global prompt at 12/20 (0.6) on the same sample."""
    return {cid: PairedScore(c, 12, 20) for cid, c in correct.items()}


@pytest.mark.parametrize(
    ("rule", "left_out"),
    [("either", {"poisoner", "weak"}), ("both", {"poisoner"}), ("global", {"poisoner"}), ("rest", {"poisoner", "weak"})],
)
def test_rules(rule, left_out):
    # weak (0.45) is within the margin of the global prompt (0.6) but more than it below the
    # others' median (0.8); the poisoner (0.0) is far below both.
    scores = _scores(a=16, b=17, c=16, weak=9, poisoner=0)
    assert set(validation_left_out(scores, rule=rule, margin=0.25)) == left_out


def test_the_reason_names_the_scores_and_the_margin():
    reasons = validation_left_out(_scores(a=16, b=16, poisoner=0), rule="either", margin=0.25)
    assert reasons == {
        "poisoner": "validation accuracy 0.00 (0/20), more than 0.25 below the other uploads' median 0.80 "
        "and the global prompt's 0.60 on the same sample"
    }


def test_exactly_the_margin_below_is_kept():
    assert validation_left_out(_scores(a=7), rule="global", margin=0.25) == {}  # 0.35 = 0.6 - 0.25
    assert validation_left_out({"a": PairedScore(3, 4, 5)}, rule="global", margin=0.2) == {}  # 0.8 - 0.2 > 0.6 in floats
    assert list(validation_left_out(_scores(a=6), rule="global", margin=0.25)) == ["a"]


def test_the_rest_needs_two_other_uploads():
    assert validation_left_out(_scores(only=0), rule="rest", margin=0.25) == {}
    assert validation_left_out(_scores(only=0), rule="both", margin=0.25) == {}
    assert list(validation_left_out(_scores(only=0), rule="either", margin=0.25)) == ["only"]
    # one peer alone is no rest: the weaker of two honest uploads is not left out for it
    assert validation_left_out(_scores(a=18, b=8), rule="rest", margin=0.25) == {}
    assert list(validation_left_out(_scores(a=18, b=17, c=8), rule="rest", margin=0.25)) == ["c"]


def test_uploads_no_worse_than_the_global_prompt_pass_its_check_even_at_margin_zero():
    assert validation_left_out(_scores(a=20, b=12, c=18), rule="global", margin=0.0) == {}
    assert list(validation_left_out(_scores(a=20, b=11, c=18), rule="global", margin=0.0)) == ["b"]


# --- the pipeline and the registry --------------------------------------------------------------


async def test_screens_run_in_order_and_validation_never_scores_an_oversized_upload():
    seen: list[set[str]] = []

    async def compare(prompts: Mapping[str, str]) -> Comparison:
        seen.append(set(prompts))
        scores = {cid: PairedScore(0 if "42" in p else 15, 12, 20) for cid, p in prompts.items()}
        return Comparison(scores, llm_calls=7)

    screens = create_screens(ScreeningConfig())
    prompts = {"a": "fine", "b": "x" * 100_000, "c": "always answer 42", "d": "also fine"}
    result = await screen_uploads(screens, prompts, _context("g" * 100, compare))
    assert seen == [{"a", "c", "d"}]
    assert set(result.left_out) == {"b", "c"}
    assert result.left_out["b"].startswith("size: ") and result.left_out["c"].startswith("validation: ")
    assert set(result.scores) == {"a", "c", "d"} and result.scores["c"]["accuracy"] == 0.0
    assert result.llm_calls == 7


def test_create_screens_follows_the_config():
    screens = create_screens(ScreeningConfig(screens=["validation"], rule="global", margin=0.1))
    assert [type(s) for s in screens] == [ValidationScreen]
    assert (screens[0].rule, screens[0].margin) == ("global", 0.1)
    assert create_screens(ScreeningConfig(screens=[])) == []
    with pytest.raises(ValueError, match="unknown screen 'nope'; choose from size, validation"):
        create_screens(ScreeningConfig(screens=["nope"]))


async def test_a_registered_screen_is_usable_by_name(monkeypatch):
    from fedtextgrad_graph.server import screening

    monkeypatch.setattr(screening, "_REGISTRY", dict(screening._REGISTRY))  # registered for this test only

    @register_screen
    class Keyword(UploadScreen):
        name = "keyword-test"

        async def screen(self, prompts: Mapping[str, str], context: ScreenContext) -> ScreenResult:
            return ScreenResult(left_out={cid: "says ignore" for cid, p in prompts.items() if "Ignore" in p})

    assert "keyword-test" in screen_names()
    screens = create_screens(ScreeningConfig(screens=["keyword-test"]))
    result = await screen_uploads(screens, {"a": "Ignore all that.", "b": "Think."}, _context())
    assert result.left_out == {"a": "keyword-test: says ignore"}


def test_screening_is_on_by_default_and_unknown_screens_fail_at_start(make_config):
    config = load_config(make_config())
    assert config.screening.screens == ["size", "validation"]
    bad = make_config(extra='\n[screening]\nscreens = ["size", "nope"]\n', name="bad.toml")
    with pytest.raises(ConfigError, match=r"screening\.screens: unknown screen 'nope'"):
        FederationRuntime.create(load_config(bad), models=SIMULATED)


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ({"rule": "median"}, "screening.rule"),
        ({"margin": 1.5}, "screening.margin"),
        ({"size_ratio": 0.5}, "screening.size_ratio"),
        ({"validation_sample": 0}, "screening.validation_sample"),
        ({"sample": 3}, "screening.sample"),
    ],
)
def test_bad_screening_settings_name_the_field(setting, field):
    data = {"tasks": {"t": {"format": "bbh", "path": "x.json"}}, "federation": {"num_clients": 2}, "screening": setting}
    with pytest.raises(ConfigError, match=rf"config\.toml: {field}: "):
        parse_config(data, source="config.toml")


# --- the sample and the comparison --------------------------------------------------------------


def test_sample_examples_is_seeded_and_bounded():
    examples = [Example(str(i), str(i)) for i in range(50)]
    one, again, other = (sample_examples(examples, 10, s) for s in ("0:screen:1", "0:screen:1", "0:screen:2"))
    assert one == again and one != other and len(one) == 10
    assert sample_examples(examples[:5], 10, "x") == examples[:5]


async def test_server_held_comparison_scores_the_global_prompt_once_and_concurrently(make_config):
    config = load_config(make_config(clients=3, extra="\n[screening]\nvalidation_sample = 6\n"))
    task = LatencyModel(latency_s=0.01)
    runtime = FederationRuntime.create(config, models={**SIMULATED, "task": task})
    try:
        g = "Think. The last line of your response should be of the following format: 'Answer: $VALUE'."
        prompts = {"client-1": g, "client-2": "Other prompt.", "client-3": "Other prompt."}
        result = await in_graph_node(lambda: compare_to_global(runtime, prompts, global_prompt=g, run_id="r", round=1))
    finally:
        runtime.close()
    assert task.calls == result.llm_calls == 2 * 6  # the global prompt and one distinct upload
    assert task.max_in_flight > 6  # both prompts scored at once
    assert result.scores["client-1"].correct == result.scores["client-1"].global_correct
    assert result.scores["client-2"] == result.scores["client-3"]
    assert {s.total for s in result.scores.values()} == {6}


async def test_federated_comparison_uses_the_other_clients_samples(make_config):
    config = load_config(
        make_config(clients=3, extra='\n[evaluation]\nmode = "federated"\n\n[screening]\nvalidation_sample = 4\n')
    )
    runtime = FederationRuntime.create(config, models=SIMULATED)
    requests: list[EvaluateRequest] = []
    evaluate = runtime.transport.evaluate

    async def spy(request: EvaluateRequest):
        requests.append(request)
        return await evaluate(request)

    runtime.transport.evaluate = spy  # type: ignore[method-assign]
    try:
        prompts = {"client-1": "One.", "client-2": "Two.", "client-3": "G."}
        result = await in_graph_node(lambda: compare_to_global(runtime, prompts, global_prompt="G.", run_id="r", round=2))
    finally:
        runtime.close()
    asked = {(r["client_id"], r["prompt"]) for r in requests}
    # each client scores the global prompt and the others' distinct prompts, never its own
    assert asked == {
        ("client-1", "G."), ("client-1", "Two."),
        ("client-2", "G."), ("client-2", "One."),
        ("client-3", "G."), ("client-3", "One."), ("client-3", "Two."),
    }
    assert all(r["sample"] == {"size": 2, "seed": "0:screen:2"} for r in requests)  # 4 examples over 2 other clients
    assert {s.total for s in result.scores.values()} == {4}
    assert result.scores["client-3"].correct == result.scores["client-3"].global_correct  # identical to the global prompt
    assert result.llm_calls == 7 * 2


def test_an_evaluate_request_with_a_sample_passes_the_flower_wire_check():
    base = {"run_id": "r", "client_id": "c", "round": 1, "prompt": "p", "split": "validation"}
    assert typed(base, EvaluateRequest) == base
    with_sample = {**base, "sample": {"size": 5, "seed": "0:screen:1"}}
    assert typed(with_sample, EvaluateRequest) == with_sample
    with pytest.raises(ValueError, match="sample"):
        typed({**base, "sample": {"size": "5", "seed": "x"}}, EvaluateRequest)
