"""Clients and batch items run concurrently under one limit on in-flight LLM calls."""

from __future__ import annotations

import time

import pytest

from fedtextgrad_graph import load_config, run_federated
from fedtextgrad_graph.site._textgrad import import_textgrad

from ..conftest import LatencyModel

LATENCY_S = 0.2
# Longest chain of dependent LLM calls in a round with one local step: forward, backward
# through the metric, backward through the task call, TGD step, proximal re-score, then
# the validation screen's scoring of the uploads, aggregation and validation.
CRITICAL_PATH_CALLS = 8


async def _timed_round(make_config, *, clients: int, max_concurrency: int) -> tuple[float, LatencyModel]:
    path = make_config(clients=clients, rounds=1, local_steps=1, max_concurrency=max_concurrency, extra="\n[evaluation]\nbaseline = false\ntest = false\n")
    model = LatencyModel(latency_s=LATENCY_S)
    import_textgrad()  # keep the one-off import out of the measurement
    started = time.perf_counter()
    state = await run_federated(load_config(path), models={"task": model, "optimizer": model, "aggregator": model, "judge": model})
    elapsed = time.perf_counter() - started
    assert [r["round"] for r in state["history"]] == [1]
    return elapsed, model


@pytest.mark.parametrize("clients", [3, 10])
async def test_round_wall_time_tracks_the_critical_path(make_config, clients):
    elapsed, model = await _timed_round(make_config, clients=clients, max_concurrency=64)
    sequential = model.calls * LATENCY_S
    critical_path = CRITICAL_PATH_CALLS * LATENCY_S
    assert model.calls >= clients * 10  # every client really made its calls
    assert elapsed < critical_path + 1.0, (elapsed, critical_path)
    assert elapsed < sequential / 3, (elapsed, sequential)
    assert model.max_in_flight >= clients * 3  # the batch of every client was in flight at once


async def test_concurrency_limit_is_honoured(make_config):
    elapsed, model = await _timed_round(make_config, clients=3, max_concurrency=2)
    assert model.max_in_flight == 2
    assert elapsed >= model.calls * LATENCY_S / 2 * 0.9
