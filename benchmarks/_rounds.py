"""Shared by the benchmarks that run whole rounds of simulated clients: their data and config."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import Any

__all__ = ["round_config", "write_data"]

ROOT = Path(__file__).resolve().parent.parent


def write_data(path: Path, clients: int, scored: int = 20) -> None:
    """Object-counting examples for ``clients`` clients (3 each) and ``scored`` to score on."""
    spec = importlib.util.spec_from_file_location("make_data", ROOT / "examples" / "make_data.py")
    assert spec is not None and spec.loader is not None
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    examples = make_data.object_counting(random.Random(0), clients * 3 + scored)
    path.write_text(json.dumps({"examples": examples}))


def round_config(clients: int, rounds: int, data_dir: Path) -> dict[str, Any]:
    """Every round runs: simulated clients, one local step, ``uid``, no baseline or test."""
    train = clients * 3
    return {
        "run": {"name": "bench", "max_concurrency": 64, "data_dir": str(data_dir)},
        "tasks": {
            "counting": {
                "format": "bbh",
                "path": "data.json",
                "split": {"train": [0, train], "validation": [train, train + 10], "test": [train + 10, train + 20]},
            }
        },
        "federation": {"num_clients": clients},
        "client": {"local_steps": 1, "batch_size": 3},
        "aggregation": {"strategy": "uid"},
        "evaluation": {"baseline": False, "test": False},
        "convergence": {"max_rounds": rounds, "unchanged_rounds": None, "patience": None},
    }
