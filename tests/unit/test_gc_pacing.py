"""While a run is in progress the young generation is collected less often; the process's own
pace comes back when the last run ends, and a pace the process chose is left alone."""

from __future__ import annotations

import gc

import pytest

from fedtextgrad_graph import SimulatedChatModel, load_config, run_federated
from fedtextgrad_graph.config import ROLES
from fedtextgrad_graph.gc_pacing import RUN_GC_THRESHOLD, paced_collection


@pytest.fixture(autouse=True)
def default_pace():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_paced_while_any_run_is_in_progress_and_restored_after_the_last():
    with paced_collection():
        assert gc.get_threshold() == (RUN_GC_THRESHOLD, 10, 10)
        with paced_collection():  # a second run in the same process
            assert gc.get_threshold()[0] == RUN_GC_THRESHOLD
        assert gc.get_threshold()[0] == RUN_GC_THRESHOLD  # the first is still running
    assert gc.get_threshold() == (700, 10, 10)


def test_a_pace_the_process_chose_is_kept():
    gc.set_threshold(50_000, 20, 20)  # already less often: untouched
    with paced_collection():
        assert gc.get_threshold() == (50_000, 20, 20)
    assert gc.get_threshold() == (50_000, 20, 20)
    gc.set_threshold(700, 10, 10)
    with paced_collection():
        gc.set_threshold(5_000, 10, 10)  # changed during the run: not overwritten at its end
    assert gc.get_threshold() == (5_000, 10, 10)


async def test_a_run_makes_its_llm_calls_at_the_run_pace(make_config):
    paces: list[int] = []

    class PaceRecorder(SimulatedChatModel):
        async def _agenerate(self, *args, **kwargs):
            paces.append(gc.get_threshold()[0])
            return await super()._agenerate(*args, **kwargs)

    config = load_config(make_config(clients=2, rounds=1))
    await run_federated(config, run_id="paced", models={role: PaceRecorder() for role in ROLES})
    assert paces and set(paces) == {RUN_GC_THRESHOLD}
    assert gc.get_threshold() == (700, 10, 10)
