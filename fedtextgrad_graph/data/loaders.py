"""Example files: BBH JSON, GSM8K JSONL, generic JSONL and CSV, with errors naming file and line."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TaskConfig

__all__ = ["DataError", "Example", "load_bbh", "load_csv", "load_examples", "load_gsm8k", "load_jsonl"]


class DataError(ValueError):
    """A missing or malformed data file, or data that cannot serve the configured run."""


@dataclass(frozen=True)
class Example:
    input: str
    target: str


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


def _jsonl_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
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


def _field(record: dict[str, Any], name: str, where: str) -> str:
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
