"""A task's train / validation / test splits, cut from its file(s) by the configured ranges.

Every place that cuts splits (the server's partition and evaluation data, a site's own
data) goes through :func:`load_task`, so server and sites see the same examples.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ..config import FedTextGradConfig, TaskConfig
from .loaders import DataError, Example, load_examples

__all__ = ["TaskSplits", "load_server_tasks", "load_task", "sample_examples"]


@dataclass(frozen=True)
class TaskSplits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]


# Named splits whose files are shuffled before slicing, with the seed. ``gsm8k`` is the
# FedTextGrad paper's code (TextGrad's GSM8K_DSPy loader): the train list shuffled with
# random.Random(0), the test list with a fresh random.Random(0). Numeric ranges slice the
# files in order.
_SHUFFLE_SEEDS: dict[str, int] = {"gsm8k": 0}


def _in_split_order(examples: list[Example], task: TaskConfig) -> list[Example]:
    seed = _SHUFFLE_SEEDS.get(task.split) if isinstance(task.split, str) else None
    if seed is None:
        return examples
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    return shuffled


def _slice(examples: list[Example], bounds: tuple[int, int], what: str, path: Path) -> list[Example]:
    start, end = bounds
    if end > len(examples):
        raise DataError(f"{path}: {what} split needs examples [{start}, {end}) but the file has {len(examples)}")
    return examples[start:end]


def load_task(name: str, task: TaskConfig, data_dir: str | Path) -> TaskSplits:
    """Load a task's file(s) and cut its train/validation/test splits.

    ``split = "gsm8k"`` shuffles the file and the test file (each with a fresh
    ``random.Random(0)``) before slicing, as the paper's code does; other splits slice in
    file order.
    """
    if task.format is None or task.path is None:
        raise DataError(f"tasks.{name}: set format and path to load its examples from a file")
    data_dir = Path(data_dir)
    path = data_dir / task.path
    examples = _in_split_order(load_examples(task, path), task)
    ranges = task.split_ranges
    test_path = data_dir / task.test_path if task.test_path else path
    test_pool = _in_split_order(load_examples(task, test_path), task) if task.test_path else examples
    return TaskSplits(
        train=_slice(examples, ranges.train, f"tasks.{name} train", path),
        validation=_slice(examples, ranges.validation, f"tasks.{name} validation", path),
        test=_slice(test_pool, ranges.test, f"tasks.{name} test", test_path),
    )


def load_server_tasks(config: FedTextGradConfig) -> dict[str, TaskSplits]:
    """The splits of every used task whose files the server holds (those with ``format`` and
    ``path``); a task without them is scored by its clients (federated evaluation)."""
    data_dir = Path(config.run.data_dir or ".")
    used = {config.client_task(cid) for cid in config.federation.client_ids()}
    held = {name: load_task(name, config.tasks[name], data_dir) for name in sorted(used) if config.tasks[name].path}
    if config.evaluation.mode == "server" and len(held) < len(used):
        missing = sorted(used - set(held))
        raise DataError(
            f"tasks.{missing[0]}: server evaluation needs the task's format and path on the server; "
            'set them, or use [evaluation] mode = "federated"'
        )
    return held


def sample_examples(examples: list[Example], size: int, seed: str) -> list[Example]:
    """At most ``size`` of ``examples``, drawn by a shuffle seeded with ``seed`` (all of them,
    in order, when there are no more than ``size``): the same seed draws the same sample."""
    if len(examples) <= size:
        return list(examples)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    return [examples[i] for i in sorted(order[:size])]
