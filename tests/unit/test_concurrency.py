"""Clients and batch items run concurrently under one limit on in-flight LLM calls.

Asserted on the structure of the calls, not on wall time (the figure is
benchmarks/round_concurrency.py's): how many were in flight at once, and in how many waves
of overlapping calls the round ran (see ``LatencyModel``).
"""

from __future__ import annotations

import pytest

from fedtextgrad_graph import load_config, run_federated

from ..conftest import LatencyModel

# Long enough that the independent calls of a wave overlap even on a busy machine (0.3 s was
# not, with ten clients, while CI shared the machine with another run).
LATENCY_S = 1.0
# Longest chain of dependent LLM calls in a round with one local step: forward, backward
# through the metric, backward through the task call, TGD step, proximal re-score, then
# the validation screen's scoring of the uploads, aggregation and validation; each repair try
# of a uid merge that missed its targets adds one more (the simulated merge is the deduplicated
# concatenation: longer than the length target when the clients added different tips).
CRITICAL_PATH_CALLS = 8
BATCH_SIZE = 3
# Above the widest wave (10 clients' uploads screened on the validation split: 70 calls), so
# the limit never splits a wave in two.
UNLIMITED = 256


async def _round(make_config, *, clients: int, max_concurrency: int, latency_s: float = LATENCY_S) -> tuple[LatencyModel, int]:
    path = make_config(clients=clients, rounds=1, local_steps=1, max_concurrency=max_concurrency, extra="\n[evaluation]\nbaseline = false\ntest = false\n")
    assert load_config(path).client.batch_size == BATCH_SIZE
    model = LatencyModel(latency_s=latency_s)
    state = await run_federated(load_config(path), models={"task": model, "optimizer": model, "aggregator": model, "judge": model})
    assert [r["round"] for r in state["history"]] == [1]
    return model, state["history"][0]["merge"]["repairs"]


@pytest.mark.parametrize("clients", [3, 10])
async def test_a_round_runs_in_as_many_waves_as_its_critical_path(make_config, clients):
    model, repairs = await _round(make_config, clients=clients, max_concurrency=UNLIMITED)
    assert model.calls >= clients * 10  # every client really made its calls
    assert model.max_in_flight >= clients * BATCH_SIZE  # the batch of every client was in flight at once
    assert model.waves == CRITICAL_PATH_CALLS + repairs, (model.waves, model.calls, repairs)


async def test_concurrency_limit_is_honoured(make_config):
    model, _ = await _round(make_config, clients=3, max_concurrency=2, latency_s=0.1)  # needs no overlap
    assert model.max_in_flight == 2
    assert model.waves >= model.calls / 2  # two at a time: at least half as many waves as calls
