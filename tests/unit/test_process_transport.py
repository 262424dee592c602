"""The ``processes`` transport's setup, before any worker starts: how clients and limits are
dealt, and what cannot be sent to a worker."""

from __future__ import annotations

import pytest

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel
from fedtextgrad_graph.config import ConfigError, load_config
from fedtextgrad_graph.models.limits import EndpointLimits
from fedtextgrad_graph.transport.processes.server_transport import ProcessTransport

ROLES = ("task", "optimizer", "aggregator", "judge")


def _processes(workers: int) -> str:
    return f'\n[transport]\nkind = "processes"\n\n[transport.processes]\nworkers = {workers}\n'


def test_clients_are_dealt_round_robin_to_at_most_one_worker_each(make_config):
    for workers, expected in ((2, [["client-1", "client-3", "client-5"], ["client-2", "client-4"]]), (9, [[f"client-{i}"] for i in range(1, 6)])):
        config = load_config(make_config(clients=5, extra=_processes(workers)))
        runtime = FederationRuntime.create(config, models=dict.fromkeys(ROLES, SimulatedChatModel()))
        try:
            assert isinstance(runtime.transport, ProcessTransport)
            assert runtime.transport.worker_processes == [(None, clients) for clients in expected]
        finally:
            runtime.close()


def test_a_metric_that_cannot_reach_a_worker_is_a_config_error(make_config):
    config = load_config(make_config(extra=_processes(2)))

    async def exact(question: str, reply: str, target: str) -> bool:  # a local function: not picklable
        return reply == target

    with pytest.raises(ConfigError, match=r"transport.kind = 'processes': a model or metric given to the run cannot be sent"):
        FederationRuntime.create(config, models=dict.fromkeys(ROLES, SimulatedChatModel()), scorers={"counting": exact})


def test_each_process_gets_its_share_of_an_endpoints_limits():
    limits = EndpointLimits(max_in_flight=9, requests_per_minute=100.0, tokens_per_minute=1001)
    assert limits.share(0.5) == EndpointLimits(4, 50.0, 500)
    # A share still admits requests (at least one), and never more than the whole limit.
    assert EndpointLimits(max_in_flight=1, requests_per_minute=2.0, tokens_per_minute=1).share(0.25) == EndpointLimits(1, 1.0, 1)
    assert EndpointLimits(requests_per_minute=0.5).share(0.25) == EndpointLimits(None, 0.5, None)
    assert EndpointLimits(requests_per_minute=60.0).share(0.5) == EndpointLimits(None, 30.0, None)
