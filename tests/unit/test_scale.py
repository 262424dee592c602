"""Work that grows with the number of clients stays linear: a round's uploads are merged into
the state once, and the merge measures of a thousand client prompts neither compare every
instruction with every other nor recompress the prompt once per sentence."""

from __future__ import annotations

import functools
import itertools
import random
import zlib
from typing import Any

import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver

from fedtextgrad_graph import FederationRuntime, SimulatedChatModel
from fedtextgrad_graph.aggregation import surprisal, uid
from fedtextgrad_graph.aggregation.surprisal import CompressionSurprisal
from fedtextgrad_graph.aggregation.uid import DUPLICATE_OVERLAP, MergeMeter, Unit, content_words, overlap_covered, unique_units
from fedtextgrad_graph.config import parse_config
from fedtextgrad_graph.runs import stream_run
from fedtextgrad_graph.state import merge_by_key, merge_writes_by_key

from ..conftest import write_bbh

WORDS = [f"word{i}" for i in range(60)] + ["count", "every", "item", "the", "list", "answer"]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))).capitalize() + "."


def _bodies(rng: random.Random, clients: int) -> dict[str, str]:
    return {f"c{i}": " ".join(_sentence(rng) for _ in range(rng.randint(1, 4))) for i in range(clients)}


def _unique_units_pairwise(bodies: dict[str, str]) -> list[Unit]:
    """The definition: each unit against every earlier one, in order."""
    units: list[Unit] = []
    for client_id, body in bodies.items():
        for text in uid.split_units(body):
            words = content_words(text)
            for i, unit in enumerate(units):
                other = content_words(unit.text)
                if (len(words & other) / len(words | other) >= DUPLICATE_OVERLAP) if words and other else text == unit.text:
                    if client_id not in unit.clients:
                        units[i] = Unit(unit.text, (*unit.clients, client_id))
                    break
            else:
                units.append(Unit(text, (client_id,)))
    return units


def _covered_by_any_window(unit: Unit, sentences: list[str]) -> bool:
    words = content_words(unit.text)
    if not words:
        return any(unit.text in s for s in sentences)
    sets = [content_words(s) for s in sentences]
    windows = sets + [a | b for a, b in itertools.pairwise(sets)]
    return any(len(words & w) >= uid.COVERAGE_OVERLAP * len(words) for w in windows)


@pytest.mark.parametrize("seed", range(5))
def test_unique_units_and_coverage_match_their_pairwise_definitions(seed):
    rng = random.Random(seed)
    bodies = _bodies(rng, 60)
    units = unique_units(bodies)
    assert units == _unique_units_pairwise(bodies)
    sentences = [_sentence(rng) for _ in range(30)]
    assert [overlap_covered(u, sentences) for u in units] == [_covered_by_any_window(u, sentences) for u in units]


async def test_unique_units_and_coverage_read_each_instruction_once(monkeypatch):
    calls = 0

    def counted(text: str) -> frozenset[str]:
        nonlocal calls
        calls += 1
        return content_words(text)

    monkeypatch.setattr(uid, "content_words", counted)
    bodies = {f"c{i}": f"Count item {i} then report total {i}. Check shelf {i} twice." for i in range(300)}
    units = unique_units(bodies)
    assert len(units) == 600
    assert calls <= 2 * len(units)  # each unit's words once when split, once cached (not once per pair)
    calls = 0
    covered = await MergeMeter(CompressionSurprisal()).covered(units, " ".join(bodies.values()))
    assert all(covered)
    assert calls <= 2 * len(units) + 600  # each sentence once, each unit once


async def test_compression_surprisal_compresses_the_text_once_with_the_same_bits(monkeypatch):
    sentences = [_sentence(random.Random(i)) for i in range(200)]
    fed = 0
    real = zlib.compressobj

    class Counting:
        def __init__(self, *args: Any) -> None:
            self._packer = real(*args)

        def compress(self, data: bytes) -> bytes:
            nonlocal fed
            fed += len(data)
            return self._packer.compress(data)

        def copy(self) -> Any:
            return self._packer.copy()

        def flush(self) -> bytes:
            return self._packer.flush()

    monkeypatch.setattr(surprisal.zlib, "compressobj", Counting)
    values = await CompressionSurprisal().surprisal(sentences)
    text = " ".join(sentences)
    assert fed <= len(text.encode())  # not once per prefix (quadratic in the prompt's length)

    def bits(prefix: str) -> int:
        packer = real(9, zlib.DEFLATED, -15)
        return 8 * len(packer.compress(prefix.encode()) + packer.flush())

    expected = [
        (bits(" ".join(sentences[: i + 1])) - (bits(" ".join(sentences[:i])) if i else 0)) / surprisal._words(s)
        for i, s in enumerate(sentences)
    ]
    assert values == expected


def test_a_steps_updates_are_merged_in_one_pass_as_the_reducer_would():
    calls = 0

    def counted(current: Any, writes: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return merge_writes_by_key(current, writes)

    channel: Any = DeltaChannel(counted, dict)
    before = channel.get() if channel.is_available() else {}
    updates: list[Any] = [{"a": 1}, None, *({f"c{i}": i} for i in range(1000)), {"a": 2}]
    assert channel.update(updates)
    assert channel.get() == functools.reduce(merge_by_key, updates, {})
    assert list(channel.get()) == [*(f"c{i}" for i in range(1000)), "a"]
    assert calls == 1  # one pass per step; a reducer channel would merge (and copy the map) per update
    assert before == {}  # the previous value is not changed in place (checkpoints may hold it)


async def test_a_round_of_200_in_process_clients_gets_every_upload(tmp_path):
    write_bbh(tmp_path / "counting.json", n=620)
    config = parse_config(
        {
            "run": {"name": "scale", "max_concurrency": 64, "data_dir": str(tmp_path)},
            "tasks": {"counting": {"format": "bbh", "path": "counting.json", "split": {"train": [0, 600], "validation": [600, 610], "test": [610, 620]}}},
            "federation": {"num_clients": 200},
            "client": {"local_steps": 1, "batch_size": 3},
            "aggregation": {"strategy": "concat"},
            "evaluation": {"baseline": False, "test": False},
            "convergence": {"max_rounds": 1},
        },
        source="test",
    )
    calls = 0

    def count(_record: Any) -> None:
        nonlocal calls
        calls += 1

    models = dict.fromkeys(("task", "optimizer", "aggregator", "judge"), SimulatedChatModel())
    runtime = FederationRuntime.create(config, models=models, on_call=count)
    try:
        state = await stream_run(runtime, InMemorySaver(), "scale", resume=False)
    finally:
        await runtime.aclose()
    (record,) = state["history"]
    assert len(record["clients"]) == len(record["client_prompts"]) == 200
    assert record["dropped"] == {}
    assert record["llm_calls"] == calls
    server_calls = record.get("screen_llm_calls", 0) + record["aggregation_llm_calls"] + record["evaluation_llm_calls"]
    assert sum(m["llm_calls"] for m in record["client_metrics"].values()) + server_calls == calls


@pytest.mark.parametrize(("clients", "named"), [(3, True), (31, False)])
def test_the_train_plot_names_clients_in_its_legend_only_while_that_stays_readable(clients, named):
    from fedtextgrad_graph import report

    step = {"round": 1, "step": 1, "train_accuracy": 1.0}
    history = [{"round": 1, "client_metrics": {f"client-{i}": {"steps": [step]} for i in range(clients)}}]
    ax = report._client_train_figure(history, 1).axes[0]
    assert len(ax.get_lines()) >= clients  # every client is still plotted
    assert (ax.get_legend() is not None) == named
    assert named or f"{clients} clients" in ax.get_title()
