"""The paper-protocol examples stay valid: they load, and cut the paper's splits from a data
folder laid out as their comments say (small fixtures written here, not the real data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedtextgrad_graph.config import FedTextGradConfig, load_config
from fedtextgrad_graph.data import build_federated_data, load_server_tasks

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """BBH files with 250 examples and GSM8K files with 450 lines: enough for every paper split."""
    (tmp_path / "bbh").mkdir()
    for task in ("object_counting", "multistep_arithmetic_two"):
        examples = [{"input": f"{task} {i}", "target": str(i)} for i in range(250)]
        (tmp_path / "bbh" / f"{task}.json").write_text(json.dumps({"examples": examples}), encoding="utf-8")
    (tmp_path / "gsm8k").mkdir()
    for part in ("train", "test"):
        lines = [json.dumps({"question": f"{part} {i}", "answer": f"so\n#### {i}"}) for i in range(450)]
        (tmp_path / "gsm8k" / f"{part}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def _paper_protocol(config: FedTextGradConfig) -> None:
    assert (config.client.local_steps, config.client.batch_size, config.client.proximal) == (3, 3, "strict")
    assert config.convergence.max_rounds == 3
    assert not config.convergence.unchanged_rounds
    assert config.federation.sampling_rate == 1.0
    assert len(config.federation.client_ids()) == 3
    assert config.screening.screens == []


def test_heterogeneous_example(data_dir: Path) -> None:
    config = load_config(EXAMPLES / "paper_heterogeneous.toml", data_dir=data_dir)
    _paper_protocol(config)
    assert {cid: config.client_task(cid) for cid in config.federation.client_ids()} == {
        "object-counting": "object_counting",
        "multistep-arithmetic": "multistep_arithmetic_two",
        "gsm8k": "gsm8k",
    }
    assert {name: task.metric for name, task in config.tasks.items()} == {
        "object_counting": "last_number",
        "multistep_arithmetic_two": "judge",
        "gsm8k": "last_number",
    }
    tasks = load_server_tasks(config)
    assert {name: (len(s.train), len(s.validation), len(s.test)) for name, s in tasks.items()} == {
        name: (50, 100, 100) for name in config.tasks
    }
    assert [e.input for e in tasks["object_counting"].test][:2] == ["object_counting 150", "object_counting 151"]
    assert tasks["gsm8k"].test[0].input.startswith("test ")
    data = build_federated_data(config)
    assert {cid: len(c.train) for cid, c in data.clients.items()} == {cid: 50 for cid in config.federation.client_ids()}


def test_homogeneous_example(data_dir: Path) -> None:
    config = load_config(EXAMPLES / "paper_homogeneous.toml", data_dir=data_dir)
    _paper_protocol(config)
    assert config.federation.partition == "homogeneous"
    data = build_federated_data(config)
    shares = [c.train for c in data.clients.values()]
    assert sorted(map(len, shares)) == [16, 17, 17]
    assert sorted(e.input for share in shares for e in share) == sorted(f"object_counting {i}" for i in range(50))
    assert len(data.tasks["object_counting"].validation) == len(data.tasks["object_counting"].test) == 100
