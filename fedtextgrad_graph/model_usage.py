"""Which models a run really used, read from its round records (never from its config).

Each round record holds the models the runtime built for that round (``RoundRecord.models``:
role -> name, plus ``<client>.<role>`` where a client used another model). These functions
summarize them for results, status and the report: one name per role where every round agrees,
``mixed: ...`` listing each model with the rounds it served where they differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .models import SIMULATED_MODEL

__all__ = ["MIXED", "models_by_round", "rounds_text", "simulated_used", "used_models"]

MIXED = "mixed"


def _recorded(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, dict[str, str]]]:
    return [(int(r["round"]), dict(r["models"])) for r in history if r.get("models")]


def rounds_text(rounds: Iterable[int]) -> str:
    """``round 3``, ``rounds 1-2, 4``: a sorted list of rounds, runs shortened to ranges."""
    ordered = sorted(set(rounds))
    spans: list[list[int]] = []
    for n in ordered:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"round {text}" if len(ordered) == 1 else f"rounds {text}"


def used_models(history: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Role (or ``<client>.<role>``) -> the model it used in the recorded rounds.

    A key every round recorded with one model maps to that name; a key whose model changed maps
    to ``mixed: A (rounds 1-2), B (round 3)``; a key some rounds lack (a client's own model in
    the rounds it took part in) gets its rounds after the name. Empty before a round finished.
    """
    recorded = _recorded(history)
    served: dict[str, dict[str, list[int]]] = {}
    for number, models in recorded:
        for key, name in models.items():
            served.setdefault(key, {}).setdefault(name, []).append(number)
    summary: dict[str, str] = {}
    for key, by_name in served.items():
        if len(by_name) == 1:
            name, rounds = next(iter(by_name.items()))
            summary[key] = name if len(rounds) == len(recorded) else f"{name} ({rounds_text(rounds)})"
        else:
            summary[key] = f"{MIXED}: " + ", ".join(f"{name} ({rounds_text(rounds)})" for name, rounds in by_name.items())
    return summary


def models_by_round(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The recorded rounds grouped by the models they used, in order of first use:
    ``[{"rounds": [1, 2], "models": {...}}, ...]``; one group when the models never changed."""
    groups: list[dict[str, Any]] = []
    for number, models in _recorded(history):
        group = next((g for g in groups if g["models"] == models), None)
        if group is None:
            groups.append({"rounds": [number], "models": models})
        else:
            group["rounds"].append(number)
    return groups


def simulated_used(history: Sequence[Mapping[str, Any]]) -> bool:
    """True when any recorded round used the simulated model for any role."""
    return any(SIMULATED_MODEL in models.values() for _, models in _recorded(history))
