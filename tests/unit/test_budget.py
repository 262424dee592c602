"""Costs and budgets: a run stops at the end of the round that crossed its ``[budget]``, says
so, and goes on once the budget is raised; usage by caller and role adds up to the totals."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from fedtextgrad_graph import SimulatedChatModel, load_config, run_federated
from fedtextgrad_graph.config import ROLES, ConfigError
from fedtextgrad_graph.runs import BudgetSpent, results_payload

PRICING = """
[pricing.simulated]
input_per_million = 2.0
output_per_million = 8.0
"""


def _models() -> dict[str, SimulatedChatModel]:
    return {role: SimulatedChatModel() for role in ROLES}


def _sums(usage: dict) -> tuple[int, int, int]:
    roles = [n for by_role in usage.values() for n in by_role.values()]
    return sum(n["calls"] for n in roles), sum(n["input"] for n in roles), sum(n["output"] for n in roles)


async def test_a_run_stops_at_its_token_budget_and_goes_on_once_it_is_raised(make_config):
    config = load_config(make_config(clients=2, rounds=3, extra=PRICING + "\n[budget]\nmax_tokens = 1\n"))
    saver = InMemorySaver()
    state = await run_federated(config, run_id="b", models=_models(), checkpointer=saver)
    out = results_payload(state, run_id="b")
    assert out["stop_reason"] == "budget" and out["rounds"] == 1 and out["test_accuracy"] is None
    assert out["status"] == "incomplete"  # resumable
    spent = out["budget"]["spent_tokens"]
    assert spent == out["llm_tokens"]["input"] + out["llm_tokens"]["output"] > 1

    with pytest.raises(BudgetSpent, match="spent .* of 1 tokens"):  # the same budget: nothing runs
        await run_federated(config, run_id="b", models=_models(), checkpointer=saver, resume=True)

    raised = config.with_budget(max_tokens=10**9)
    state = await run_federated(raised, run_id="b", models=_models(), checkpointer=saver, resume=True)
    out = results_payload(state, run_id="b")
    assert out["stop_reason"] == "max_rounds" and out["rounds"] == 3 and out["test_accuracy"] is not None
    assert out["config"]["budget"]["max_tokens"] == 10**9  # the raised budget is saved with the run
    calls, tokens_in, tokens_out = _sums(out["llm_usage"])
    assert (calls, tokens_in, tokens_out) == (out["llm_calls"], out["llm_tokens"]["input"], out["llm_tokens"]["output"])
    for record in out["history"]:
        assert _sums(record["llm_usage"])[1:] == (record["llm_tokens"]["input"], record["llm_tokens"]["output"])
        assert set(record["llm_usage"]) == {"client-1", "client-2", "server"}
    expected = (tokens_in * 2.0 + tokens_out * 8.0) / 1e6
    assert out["cost_usd"] == pytest.approx(expected)


async def test_a_usd_budget_stops_the_run_and_needs_a_price_for_every_model(make_config):
    config = load_config(make_config(clients=2, rounds=3, extra=PRICING + "\n[budget]\nmax_usd = 0.000001\n"))
    state = await run_federated(config, run_id="u", models=_models())
    out = results_payload(state, run_id="u")
    assert out["stop_reason"] == "budget" and out["rounds"] == 1 and out["budget"]["spent_usd"] >= 0.000001

    unpriced = load_config(make_config(clients=2, rounds=3, extra="\n[budget]\nmax_usd = 5\n", name="unpriced.toml"))

    class Unused(SimulatedChatModel):
        async def _agenerate(self, *args, **kwargs):  # type: ignore[override]
            raise AssertionError("a model was called before the budget's prices were checked")

    with pytest.raises(ConfigError, match=r"budget.max_usd: no \[pricing\] for 'simulated'"):
        await run_federated(unpriced, run_id="x", models={role: Unused() for role in ROLES})


def test_bad_budget_and_pricing_values_name_the_field(make_config):
    with pytest.raises(ConfigError, match="budget.max_tokens"):
        load_config(make_config(extra="\n[budget]\nmax_tokens = 0\n"))
    with pytest.raises(ConfigError, match="pricing.simulated.input_per_million"):
        load_config(make_config(extra="\n[pricing.simulated]\ninput_per_million = -1\noutput_per_million = 1\n"))


async def test_the_report_shows_usage_by_role_caller_and_round_with_each_cost(make_config, tmp_path):
    from html.parser import HTMLParser

    from fedtextgrad_graph.report import write_report

    config = load_config(make_config(clients=2, rounds=2, extra=PRICING))
    state = await run_federated(config, run_id="r", models=_models())
    payload = results_payload(state, run_id="r")
    page = write_report(state, tmp_path / "report", run_id="r").html.read_text(encoding="utf-8")

    class Tables(HTMLParser):
        """The text of each cell of the tables with an id, by table id and row."""

        def __init__(self) -> None:
            super().__init__()
            self.tables: dict[str, list[list[str]]] = {}
            self.current: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "table":
                self.current = dict(attrs).get("id")
                self.tables[self.current or ""] = []
            elif tag == "tr" and self.current:
                self.tables[self.current].append([])

        def handle_data(self, data: str) -> None:
            if self.current and self.tables[self.current]:
                self.tables[self.current][-1].append(data)

        def handle_endtag(self, tag: str) -> None:
            if tag == "table":
                self.current = None

    parser = Tables()
    parser.feed(page)
    totals = {row[0]: [int(x) for x in row[1:]] for row in parser.tables["llm-usage"][1:]}
    by_role = {}
    for roles in payload["llm_usage"].values():
        for role, n in roles.items():
            row = by_role.setdefault(f"role {role}", [0, 0, 0, 0])
            for i, key in enumerate(("calls", "input", "output", "calls_without_usage")):
                row[i] += n[key]
    assert {k: v for k, v in totals.items() if k.startswith("role ")} == by_role
    assert {"client-1", "client-2", "server"} <= set(totals)
    rounds = {row[0]: row[-1] for row in parser.tables["llm-usage-by-round"][1:]}
    assert list(rounds) == ["0 (baseline)", "1", "2", "test (best prompt)"]
    assert rounds["1"] == f"${state['history'][0]['cost_usd']:.4f}" and rounds["test (best prompt)"] == f"${state['test_cost_usd']:.4f}"
    assert f"${payload['cost_usd']:.4f}" in page  # the run's total, in the header


class SiteModel(SimulatedChatModel):
    """The simulated script under another name: a model only one client's site uses."""

    @property
    def model_name(self) -> str:
        return "site-model"


async def test_federated_scoring_is_priced_with_the_models_each_client_reported(make_config):
    """In federated scoring each client scores with its own models and reports which: its calls
    are priced at its model's price, in the baseline and in every round, not at the server's."""
    site_price = "\n[pricing.site-model]\ninput_per_million = 1000.0\noutput_per_million = 1000.0\n"
    config = load_config(make_config(clients=2, rounds=1, extra=PRICING + site_price + '\n[evaluation]\nmode = "federated"\n'))
    first = config.federation.client_ids()[0]
    models = {**_models(), f"{first}.task": SiteModel(), f"{first}.judge": SiteModel()}
    state = await run_federated(config, run_id="f", models=models)

    def priced(usage: dict) -> float:
        total = 0.0
        for caller, roles in usage.items():
            for role, n in roles.items():
                inp, out = (1000.0, 1000.0) if caller == first and role in ("task", "judge") else (2.0, 8.0)
                total += (n["input"] * inp + n["output"] * out) / 1_000_000
        return total

    assert state["baseline_llm_usage"][first]["task"]["calls"] > 0  # the client scored the baseline
    assert state["baseline_cost_usd"] == pytest.approx(priced(state["baseline_llm_usage"]))
    record = state["history"][0]
    assert record["models"][f"{first}.task"] == "site-model"
    assert record["cost_usd"] == pytest.approx(priced(record["llm_usage"]))
    assert state["test_cost_usd"] == pytest.approx(priced(state["test_llm_usage"]))
