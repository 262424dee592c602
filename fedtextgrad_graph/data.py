"""Data loaders, the paper's splits, and client partitioning."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from .config import FedTextGradConfig, TaskConfig

__all__ = [
    "ClientData",
    "DataError",
    "Example",
    "FederatedData",
    "TaskSplits",
    "build_federated_data",
    "load_bbh",
    "load_csv",
    "load_examples",
    "load_gsm8k",
    "load_jsonl",
    "load_task",
]


class DataError(ValueError):
    """A missing or malformed data file, or data that cannot serve the configured run."""


@dataclass(frozen=True)
class Example:
    input: str
    target: str


@dataclass(frozen=True)
class TaskSplits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]


@dataclass(frozen=True)
class ClientData:
    """A client's private examples. Never enters the graph state."""

    task: str
    train: list[Example]
    validation: list[Example]


@dataclass(frozen=True)
class FederatedData:
    """Each client's private data, and every used task's splits (held by the server)."""

    clients: dict[str, ClientData]
    tasks: dict[str, TaskSplits]


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig drops a byte-order mark (spreadsheet exports), which would otherwise
        # stick to the first CSV column name and make json.loads fail.
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: data file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read data file: {exc}") from None


def _as_text(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: expected a string or number, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise DataError(f"{where}: empty value")
    return text


def load_bbh(path: str | Path) -> list[Example]:
    """BIG-Bench Hard JSON: ``{"examples": [{"input": ..., "target": ...}]}``."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise DataError(f'{path}: expected an object with an "examples" list')
    examples = []
    for i, item in enumerate(data["examples"]):
        where = f"{path}: examples[{i}]"
        if not isinstance(item, dict) or "input" not in item or "target" not in item:
            raise DataError(f'{where}: expected an object with "input" and "target"')
        examples.append(Example(_as_text(item["input"], f"{where}.input"), _as_text(item["target"], f"{where}.target")))
    return examples


def _jsonl_records(path: Path) -> list[tuple[int, dict]]:
    records = []
    # Split on "\n" only: str.splitlines() also splits on U+2028 and U+0085, legal in JSON strings.
    for lineno, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object")
        records.append((lineno, record))
    return records


def _field(record: dict, name: str, where: str) -> str:
    if name not in record:
        raise DataError(f"{where}: missing field {name!r}")
    return _as_text(record[name], f"{where}: field {name!r}")


def load_gsm8k(path: str | Path) -> list[Example]:
    """GSM8K JSONL: ``{"question": ..., "answer": "... #### 42"}``; the target is after ``####``."""
    path = Path(path)
    examples = []
    for lineno, record in _jsonl_records(path):
        where = f"{path}:{lineno}"
        answer = _field(record, "answer", where)
        if "####" not in answer:
            raise DataError(f"{where}: answer has no '####' final answer")
        target = answer.rsplit("####", 1)[1].strip().replace(",", "")
        if not target:
            raise DataError(f"{where}: empty final answer after '####'")
        examples.append(Example(_field(record, "question", where), target))
    return examples


def load_jsonl(path: str | Path, *, input_field: str = "input", target_field: str = "target") -> list[Example]:
    """Generic JSONL, one object per line, with configurable field names."""
    path = Path(path)
    return [
        Example(_field(r, input_field, f"{path}:{n}"), _field(r, target_field, f"{path}:{n}"))
        for n, r in _jsonl_records(path)
    ]


def load_csv(path: str | Path, *, input_field: str = "input", target_field: str = "target") -> list[Example]:
    """Generic CSV with a header row, with configurable column names."""
    path = Path(path)
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    header = reader.fieldnames or []
    for name in (input_field, target_field):
        if name not in header:
            raise DataError(f"{path}:1: missing column {name!r} (header: {header})")
    examples = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row:
            raise DataError(f"{where}: more fields than the header has")
        examples.append(Example(_field(row, input_field, where), _field(row, target_field, where)))
    return examples


def load_examples(task: TaskConfig, path: str | Path) -> list[Example]:
    """Load one file in the task's format."""
    if task.format == "bbh":
        return load_bbh(path)
    if task.format == "gsm8k":
        return load_gsm8k(path)
    loader = load_jsonl if task.format == "jsonl" else load_csv
    return loader(path, input_field=task.input_field, target_field=task.target_field)


def _slice(examples: list[Example], bounds: tuple[int, int], what: str, path: Path) -> list[Example]:
    start, end = bounds
    if end > len(examples):
        raise DataError(f"{path}: {what} split needs examples [{start}, {end}) but the file has {len(examples)}")
    return examples[start:end]


def load_task(name: str, task: TaskConfig, data_dir: str | Path) -> TaskSplits:
    """Load a task's file(s) and cut its train/validation/test splits."""
    if task.format is None or task.path is None:
        raise DataError(f"tasks.{name}: set format and path to load its examples from a file")
    data_dir = Path(data_dir)
    path = data_dir / task.path
    examples = load_examples(task, path)
    ranges = task.split_ranges
    test_path = data_dir / task.test_path if task.test_path else path
    test_pool = load_examples(task, test_path) if task.test_path else examples
    return TaskSplits(
        train=_slice(examples, ranges.train, f"tasks.{name} train", path),
        validation=_slice(examples, ranges.validation, f"tasks.{name} validation", path),
        test=_slice(test_pool, ranges.test, f"tasks.{name} test", test_path),
    )


def _partition(examples: list[Example], client_ids: list[str], seed: int, what: str) -> dict[str, list[Example]]:
    if len(examples) < len(client_ids):
        raise DataError(f"{what}: {len(client_ids)} clients but only {len(examples)} examples to share")
    order = list(range(len(examples)))
    random.Random(f"{seed}:{what}").shuffle(order)
    return {cid: [examples[j] for j in order[i :: len(client_ids)]] for i, cid in enumerate(client_ids)}


def build_federated_data(config: FedTextGradConfig) -> FederatedData:
    """Load every task and give each client its private train and validation data.

    Clients that share a task (all of them in a homogeneous run) get a seeded, disjoint
    share of its train and validation splits; in a heterogeneous run each task is owned
    by its clients. The server keeps every used task's full validation and test splits.
    """
    data_dir = Path(config.run.data_dir or ".")
    ids = config.federation.client_ids()
    by_task: dict[str, list[str]] = {}
    for cid in ids:
        by_task.setdefault(config.client_task(cid), []).append(cid)
    tasks = {name: load_task(name, config.tasks[name], data_dir) for name in by_task}
    clients: dict[str, ClientData] = {}
    for name, members in by_task.items():
        seed = config.run.seed
        train = _partition(tasks[name].train, members, seed, f"tasks.{name} train")
        # Validation shares are only used by federated evaluation; the server scores the whole split.
        val = (
            _partition(tasks[name].validation, members, seed, f"tasks.{name} validation")
            if config.evaluation.mode == "federated"
            else dict.fromkeys(members, [])
        )
        clients.update({cid: ClientData(name, train[cid], val[cid]) for cid in members})
    return FederatedData(clients={cid: clients[cid] for cid in ids}, tasks=tasks)
