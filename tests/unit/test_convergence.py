"""Stop rules and best tracking, the proximal rule, client sampling and minibatches."""

from __future__ import annotations

import pytest

from fedtextgrad_graph.config import ConvergenceConfig
from fedtextgrad_graph.server.convergence import decide
from fedtextgrad_graph.server.graph import select_clients
from fedtextgrad_graph.site.client import minibatch_indices, proximal_accepts

_SAME_AS_BEST = object()


def verdict(rules: ConvergenceConfig, *, round: int = 1, accuracy: float = 0.5, best: float | None = None,
            reference: object = _SAME_AS_BEST, stale: int = 0, unchanged: int = 0, prompt: str = "new",
            previous: str = "old"):
    return decide(
        rules,
        round=round,
        accuracy=accuracy,
        best_score=best,
        reference_score=best if reference is _SAME_AS_BEST else reference,
        rounds_without_improvement=stale,
        rounds_unchanged=unchanged,
        prompt=prompt,
        previous_prompt=previous,
    )


# --- stop rules ------------------------------------------------------------------------------


def test_max_rounds() -> None:
    rules = ConvergenceConfig(max_rounds=3)
    assert verdict(rules, round=2).stop_reason is None
    assert verdict(rules, round=3).stop_reason == "max_rounds"


def test_first_round_always_improves() -> None:
    result = verdict(ConvergenceConfig(max_rounds=5, min_delta=0.5), accuracy=0.0, best=None, stale=4)
    assert (result.improved, result.new_best, result.rounds_without_improvement) == (True, True, 0)


def test_patience_counts_rounds_without_improvement() -> None:
    rules = ConvergenceConfig(max_rounds=10, patience=2)
    first = verdict(rules, round=2, accuracy=0.5, best=0.5, stale=0)
    assert (first.improved, first.rounds_without_improvement, first.stop_reason) == (False, 1, None)
    second = verdict(rules, round=3, accuracy=0.4, best=0.5, stale=1)
    assert (second.rounds_without_improvement, second.stop_reason) == (2, "patience")


def test_improvement_resets_patience() -> None:
    result = verdict(ConvergenceConfig(max_rounds=10, patience=2), accuracy=0.6, best=0.5, stale=1)
    assert (result.improved, result.rounds_without_improvement, result.stop_reason) == (True, 0, None)


def test_patience_with_min_delta() -> None:
    rules = ConvergenceConfig(max_rounds=10, patience=2, min_delta=0.05)
    # A gain of 0.04 is a new best, but not an improvement for patience.
    small = verdict(rules, accuracy=0.54, best=0.5, stale=1)
    assert (small.improved, small.new_best, small.rounds_without_improvement) == (False, True, 2)
    assert small.stop_reason == "patience"
    # A gain above min_delta counts.
    large = verdict(rules, accuracy=0.56, best=0.5, stale=1)
    assert (large.improved, large.rounds_without_improvement, large.stop_reason) == (True, 0, None)


def test_small_gains_add_up_against_the_last_improvement() -> None:
    """0.50 -> 0.54 -> 0.58 with min_delta 0.05: the second gain is 0.08 over the last improvement."""
    rules = ConvergenceConfig(max_rounds=10, patience=2, min_delta=0.05)
    best, reference, stale = None, None, 0
    outcomes = []
    for round, accuracy in enumerate([0.50, 0.54, 0.58], start=1):
        result = verdict(rules, round=round, accuracy=accuracy, best=best, reference=reference, stale=stale)
        outcomes.append((result.improved, result.stop_reason))
        stale = result.rounds_without_improvement
        reference = accuracy if result.improved else reference
        best = accuracy if result.new_best else best
    assert outcomes == [(True, None), (False, None), (True, None)]


def test_target_accuracy() -> None:
    rules = ConvergenceConfig(max_rounds=10, target_accuracy=0.8)
    assert verdict(rules, accuracy=0.79).stop_reason is None
    assert verdict(rules, accuracy=0.8).stop_reason == "target_accuracy"


def test_target_accuracy_takes_precedence() -> None:
    rules = ConvergenceConfig(max_rounds=1, patience=1, target_accuracy=0.5)
    result = verdict(rules, round=1, accuracy=0.9, best=0.95, unchanged=5, prompt="same", previous="same")
    assert result.stop_reason == "target_accuracy"


def test_prompt_unchanged_for_several_rounds() -> None:
    rules = ConvergenceConfig(max_rounds=10)  # two unchanged rounds in a row by default
    first = verdict(rules, prompt="p", previous="p")
    assert (first.rounds_unchanged, first.stop_reason) == (1, None)
    second = verdict(rules, prompt="p", previous="p", unchanged=1)
    assert (second.rounds_unchanged, second.stop_reason) == (2, "prompt_unchanged")
    changed = verdict(rules, prompt="p2", previous="p", unchanged=1)
    assert (changed.rounds_unchanged, changed.stop_reason) == (0, None)


def test_prompt_unchanged_can_be_disabled() -> None:
    rules = ConvergenceConfig(max_rounds=10, unchanged_rounds=None)
    assert verdict(rules, prompt="p", previous="p", unchanged=50).stop_reason is None


# --- best tracking ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accuracy", "best", "new_best"),
    [(0.6, 0.5, True), (0.5, 0.5, False), (0.4, 0.5, False), (0.0, None, True)],
)
def test_new_best_only_on_strictly_higher_accuracy(accuracy: float, best: float | None, new_best: bool) -> None:
    assert verdict(ConvergenceConfig(max_rounds=10), accuracy=accuracy, best=best).new_best is new_best


def test_best_is_the_first_of_ties_over_a_run() -> None:
    rules = ConvergenceConfig(max_rounds=10, unchanged_rounds=None)
    best, best_round, stale = None, None, 0
    for round, accuracy in enumerate([0.4, 0.7, 0.7, 0.6, 0.7], start=1):
        result = verdict(rules, round=round, accuracy=accuracy, best=best, stale=stale)
        stale = result.rounds_without_improvement
        if result.new_best:
            best, best_round = accuracy, round
    assert (best, best_round, stale) == (0.7, 2, 3)


# --- proximal rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "before", "after", "accepted"),
    [
        ("non_decreasing", 0.5, 0.6, True),
        ("non_decreasing", 0.5, 0.5, True),
        ("non_decreasing", 0.5, 0.4, False),
        ("strict", 0.5, 0.6, True),
        ("strict", 0.5, 0.5, False),
        ("strict", 0.5, 0.4, False),
        ("strict", 1.0, 1.0, True),  # a perfect batch cannot rise
        ("off", 0.5, 0.0, True),
        ("off", 0.5, 0.6, True),
    ],
)
def test_proximal_accepts(rule: str, before: float, after: float, accepted: bool) -> None:
    assert proximal_accepts(rule, before, after) is accepted


# --- client sampling ---------------------------------------------------------------------------

CLIENTS = [f"client-{i}" for i in range(1, 11)]


def test_select_clients_is_seeded() -> None:
    assert select_clients(CLIENTS, 0.5, seed=7, round=3) == select_clients(CLIENTS, 0.5, seed=7, round=3)
    by_seed = {tuple(select_clients(CLIENTS, 0.5, seed=seed, round=3)) for seed in range(10)}
    assert len(by_seed) > 1


@pytest.mark.parametrize(("rate", "count"), [(1.0, 10), (0.5, 5), (0.3, 3), (0.1, 1), (0.01, 1)])
def test_select_clients_respects_sampling_rate(rate: float, count: int) -> None:
    chosen = select_clients(CLIENTS, rate, seed=0, round=1)
    assert len(chosen) == count
    assert len(set(chosen)) == count
    assert set(chosen) <= set(CLIENTS)
    assert chosen == [cid for cid in CLIENTS if cid in chosen]  # kept in client order


def test_select_clients_single_client() -> None:
    assert select_clients(["only"], 0.1, seed=0, round=1) == ["only"]


def test_select_clients_differs_between_rounds() -> None:
    rounds = [tuple(select_clients(CLIENTS, 0.5, seed=0, round=r)) for r in range(1, 11)]
    assert len(set(rounds)) > 1
    assert rounds[0] != rounds[1]


# --- minibatches -------------------------------------------------------------------------------


def test_minibatch_indices_reproducible_and_in_range() -> None:
    batch = minibatch_indices(0, "client-1", 2, 1, size=3, n=20)
    assert batch == minibatch_indices(0, "client-1", 2, 1, size=3, n=20)
    assert len(batch) == 3 == len(set(batch))
    assert all(0 <= i < 20 for i in batch)
    assert batch == sorted(batch)


def test_minibatch_indices_vary_with_step_client_and_round() -> None:
    base = (0, "client-1", 1, 1)
    variants = [(0, "client-1", 1, s) for s in range(2, 8)]
    variants += [(0, f"client-{c}", 1, 1) for c in range(2, 8)]
    variants += [(0, "client-1", r, 1) for r in range(2, 8)]
    batches = {tuple(minibatch_indices(*args, size=3, n=50)) for args in variants}
    assert len(batches) > 1
    assert tuple(minibatch_indices(*base, size=3, n=50)) != tuple(minibatch_indices(0, "client-1", 1, 2, size=3, n=50))


def test_minibatch_larger_than_data_takes_everything() -> None:
    assert minibatch_indices(0, "client-1", 1, 1, size=10, n=4) == [0, 1, 2, 3]


def test_prompt_unchanged_zero_turns_it_off_as_documented() -> None:
    rules = ConvergenceConfig.model_validate({"max_rounds": 10, "unchanged_rounds": 0})
    assert verdict(rules, prompt="p", previous="p", unchanged=50).stop_reason is None
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        ConvergenceConfig.model_validate({"unchanged_rounds": -1})
