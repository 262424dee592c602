"""Every default docs/configuration.md states is the config model's default."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from fedtextgrad_graph.config import FedTextGradConfig, TaskConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_SECTION = re.compile(r"^#{2,3} `\[([\w.]+)\]`")
_ROW = re.compile(r"^\| (`[^|]+`) \| ([^|]+) \| ")
# Defaults the table states in words: what each means is checked here, not parsed.
_PROSE = {
    "none": None,
    "config folder": None,
    "the only task": None,
}
_DESCRIBED = {  # (section, field): the words the table uses for a default that is not a value
    ("tasks.NAME", "format"): "required",
    ("tasks.NAME", "path"): "required in-process",
    ("models", "model"): "`openai:gpt-4o-mini` if `OPENAI_API_KEY` is set",
    ("models", "temperature"): "provider default",
    ("models", "task"): "inherit",
}


def _model(section: str) -> type[BaseModel]:
    if section == "tasks.NAME":
        return TaskConfig
    model: type[BaseModel] = FedTextGradConfig
    for part in section.split("."):
        annotation = model.model_fields[part].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), section
        model = annotation
    return model


def _value(cell: str) -> Any:
    """A table cell's value: TOML in backticks (a bare word is a string), a quoted string, or prose."""
    if cell in _PROSE:
        return _PROSE[cell]
    if cell.startswith('"') and cell.endswith('"'):
        return cell[1:-1]
    if cell.startswith("`") and cell.endswith("`") and cell.count("`") == 2:
        text = cell[1:-1]
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            return text
    raise AssertionError(f"cannot read the default {cell!r}")


def documented_defaults(doc: Path = DOC) -> list[tuple[str, str, str]]:
    """(section, field, default cell) of every row of every field table in ``doc``."""
    rows: list[tuple[str, str, str]] = []
    section: str | None = None
    for line in doc.read_text(encoding="utf-8").splitlines():
        if (heading := _SECTION.match(line)) is not None:
            section = heading.group(1)
        elif line.startswith("## "):
            section = None  # site files and prose sections have no field table of their own
        elif section is not None and (row := _ROW.match(line)) is not None and row.group(1) != "`field`":
            names = re.findall(r"`(\w+)`", row.group(1))
            cells = [c.strip() for c in row.group(2).split(", ")] if len(names) > 1 else [row.group(2).strip()]
            if len(cells) != len(names):
                cells = cells * len(names)
            rows += [(section, name, cell) for name, cell in zip(names, cells, strict=True)]
    return rows


def _default(model: type[BaseModel], name: str) -> Any:
    default = model.model_fields[name].get_default(call_default_factory=True)
    return default.model_dump() if isinstance(default, BaseModel) else default


def test_the_doc_has_tables_for_every_section() -> None:
    sections = {section for section, _, _ in documented_defaults()}
    assert {"run", "prompt", "tasks.NAME", "federation", "client", "guard", "aggregation", "evaluation"} <= sections
    assert {"screening", "convergence", "models", "transport", "transport.flower", "review"} <= sections


@pytest.mark.parametrize(("section", "name", "cell"), documented_defaults())
def test_documented_default_is_the_models_default(section: str, name: str, cell: str) -> None:
    model = _model(section)
    assert name in model.model_fields, f"docs/configuration.md [{section}] documents {name}, which the config lacks"
    if (section, name) in _DESCRIBED or (section == "models" and name in ("optimizer", "aggregator", "judge")):
        assert cell == _DESCRIBED.get((section, name), "inherit")
        return
    assert _value(cell) == _default(model, name), f"[{section}] {name}: documented {cell}, default {_default(model, name)!r}"


def test_every_field_is_documented() -> None:
    documented = {(section, name) for section, name, _ in documented_defaults()}
    for section in {s for s, _ in documented}:
        fields = set(_model(section).model_fields)
        missing = sorted(f for f in fields if (section, f) not in documented and not _is_section(_model(section), f))
        assert not missing, f"docs/configuration.md [{section}] does not document {missing}"


def _is_section(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel) and name != "clients"


def test_a_wrong_documented_default_is_caught(tmp_path: Path) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text(DOC.read_text(encoding="utf-8").replace("| `max_rounds` | `3` |", "| `max_rounds` | `5` |"))
    (row,) = [r for r in documented_defaults(doc) if r[1] == "max_rounds"]
    assert _value(row[2]) != _default(_model("convergence"), "max_rounds")
