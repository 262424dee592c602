"""What a merge keeps and how evenly it spreads information: the measures behind ``uid``.

- **Instruction units**: a prompt body split into sentences (lines and bullets are units of their
  own; ``e.g.``, ``i.e.`` and initials do not end a sentence). Units of different clients
  whose content words overlap by :data:`DUPLICATE_OVERLAP` or more (Jaccard) are one unit, which
  remembers every client it came from.
- **Coverage**: the share of unique units present in a merged body. ``overlap`` (the default): a unit
  is present when at least :data:`COVERAGE_OVERLAP` of its content words (lower-cased, stop words
  removed, crude suffix stemming) occur in one sentence of the merge or two consecutive ones.
  ``entailment``: the aggregator model is asked, in one call per measured merge, which units the
  merge states (units its reply leaves unanswered are judged by overlap).
- **Length ratio**: merged body characters / the longest client body's characters.
- **Surprisal profile** and **UID score**: per-sentence surprisal of the merged body (see
  :mod:`.surprisal`) and its coefficient of variation (population standard deviation / mean; 0 for
  fewer than two sentences): lower is more uniform.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeAlias

from ..metrics import Generate
from ..prompts import AGGREGATOR_SYSTEM_PROMPT, ENTAILMENT_TEMPLATE
from .surprisal import CompressionSurprisal, SurprisalEstimator, SurprisalUnavailable

__all__ = [
    "COVERAGE_OVERLAP",
    "DUPLICATE_OVERLAP",
    "CoverageMode",
    "MergeMeter",
    "Unit",
    "content_words",
    "length_ratio",
    "overlap_covered",
    "split_units",
    "surprisal_profile",
    "uid_score",
    "unique_units",
]

logger = logging.getLogger(__name__)

DUPLICATE_OVERLAP = 0.8
"""Content-word Jaccard similarity at which two client sentences are one instruction."""
COVERAGE_OVERLAP = 0.6
"""Share of a unit's content words a merge must contain (in one or two consecutive sentences)."""

CoverageMode: TypeAlias = Literal["overlap", "entailment"]
Candidate: TypeAlias = dict[str, Any]
"""One measured merge: ``body``, ``covered``, ``missing``, ``surprisal``, ``uid_score``, ``length_ratio``."""

_ABBREVIATIONS = frozenset({"e.g.", "i.e.", "etc.", "vs.", "cf.", "approx.", "fig.", "eq.", "no.", "mr.", "mrs.", "dr.", "st."})
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "been", "being", "but", "by", "can", "do", "does", "each", "for", "from", "has", "have", "how", "if", "in", "into", "is", "it", "its", "it's", "may", "must", "not", "of", "on", "or", "so", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "was", "were", "what", "when", "where", "which", "while", "who", "will", "with", "would", "you", "your", "yours", "i", "we", "our", "us", "should", "could", "every", "any", "all", "also", "only", "just", "more", "most", "other", "some", "very"]
)
_SUFFIXES = ("ing", "ed", "es", "ly", "s")


def _ends_sentence(text: str, end: int) -> bool:
    word = text[:end].rstrip().rsplit(None, 1)[-1].lower().rstrip("\"')]")
    if word in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.", word):
        return False
    return not text[end:].lstrip()[:1].islower()


def split_units(body: str) -> list[str]:
    """The instruction units of a prompt body, in order (see module docs)."""
    units: list[str] = []
    for line in body.splitlines():
        line = _BULLET.sub("", line).strip()
        start = 0
        for match in _SENTENCE_END.finditer(line):
            if _ends_sentence(line, match.end()):
                units.append(line[start : match.end()].strip())
                start = match.end()
        units.append(line[start:].strip())
    return [unit for unit in units if re.search(r"\w", unit)]


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> frozenset[str]:
    """Lower-cased, stemmed words of ``text`` without stop words."""
    return frozenset(_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS)


@dataclass(frozen=True)
class Unit:
    """One unique client instruction and the clients that gave it (in upload order)."""

    text: str
    clients: tuple[str, ...]

    @cached_property
    def words(self) -> frozenset[str]:
        return content_words(self.text)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def unique_units(bodies: Mapping[str, str]) -> list[Unit]:
    """The units of every client body, near-duplicates merged, in first-seen order.

    A unit is compared only with the earlier units it shares a content word with (the others'
    overlap is 0), so a thousand clients' instructions take milliseconds, not minutes."""
    units: list[Unit] = []
    by_word: dict[str, list[int]] = {}  # content word -> the units holding it, in order
    by_text: dict[str, int] = {}  # the first unit without content words, by text
    for client_id, body in bodies.items():
        for text in split_units(body):
            words = content_words(text)
            if words:
                near = sorted({i for word in words for i in by_word.get(word, ())})
                match = next((i for i in near if _jaccard(words, units[i].words) >= DUPLICATE_OVERLAP), None)
            else:
                match = by_text.get(text)
            if match is None:
                for word in words:
                    by_word.setdefault(word, []).append(len(units))
                if not words:
                    by_text[text] = len(units)
                units.append(Unit(text, (client_id,)))
            elif client_id not in units[match].clients:
                unit = units[match]
                units[match] = Unit(unit.text, (*unit.clients, client_id))
    return units


class _Sentences:
    """A body's sentences with their content words, indexed by word for coverage checks."""

    def __init__(self, sentences: Sequence[str]) -> None:
        self.texts = list(sentences)
        self.words = [content_words(s) for s in self.texts]
        self.by_word: dict[str, list[int]] = {}
        for i, words in enumerate(self.words):
            for word in words:
                self.by_word.setdefault(word, []).append(i)

    def covers(self, unit: Unit) -> bool:
        """Whether one sentence, or two consecutive ones, hold :data:`COVERAGE_OVERLAP` of the
        unit's content words (only windows sharing a word with the unit can)."""
        words = unit.words
        if not words:
            return any(unit.text in s for s in self.texts)
        need = COVERAGE_OVERLAP * len(words)
        hit = {i for word in words for i in self.by_word.get(word, ())}
        if any(len(words & self.words[i]) >= need for i in hit):
            return True
        starts = hit | {i - 1 for i in hit if i > 0}
        return any(len(words & (self.words[i] | self.words[i + 1])) >= need for i in starts if i + 1 < len(self.words))


def overlap_covered(unit: Unit, sentences: Sequence[str]) -> bool:
    """Whether one sentence, or two consecutive ones, hold :data:`COVERAGE_OVERLAP` of the unit's content words."""
    return _Sentences(sentences).covers(unit)


def length_ratio(body: str, client_bodies: Sequence[str]) -> float:
    """Characters of ``body`` over those of the longest client body."""
    return len(body) / max(1, *(len(b) for b in client_bodies))


def uid_score(surprisal: Sequence[float]) -> float:
    """Coefficient of variation of per-sentence surprisal (0 for fewer than two sentences)."""
    if len(surprisal) < 2:
        return 0.0
    mean = statistics.fmean(surprisal)
    return statistics.pstdev(surprisal) / mean if mean > 0 else 0.0


def surprisal_profile(values: Sequence[float], unit: str) -> dict[str, Any]:
    """The summary the round record keeps of a prompt's per-sentence surprisal."""
    return {
        "unit": unit,
        "sentences": [round(v, 4) for v in values],
        "mean": round(statistics.fmean(values), 4) if values else 0.0,
        "std": round(statistics.pstdev(values), 4) if values else 0.0,
        "min": round(min(values), 4) if values else 0.0,
        "max": round(max(values), 4) if values else 0.0,
    }


def _parse_verdicts(reply: str, count: int) -> dict[int, bool]:
    verdicts: dict[int, bool] = {}
    for number, answer in re.findall(r"(?m)^\s*(\d+)\s*[:.)-]\s*(yes|no)\b", reply.lower()):
        if 1 <= int(number) <= count:
            verdicts[int(number) - 1] = answer == "yes"
    return verdicts


class MergeMeter:
    """Measures candidate merges against the round's unique units.

    Args:
        estimator: The surprisal estimator; when it is unavailable (``SurprisalUnavailable``), the
            meter warns once and uses ``compression`` from then on (:attr:`estimator` says which).
        coverage: ``overlap`` or ``entailment`` (which calls ``generate``).
        generate: The aggregator model, for ``entailment``.
    """

    def __init__(self, estimator: SurprisalEstimator, *, coverage: CoverageMode = "overlap", generate: Generate | None = None) -> None:
        if coverage == "entailment" and generate is None:
            raise ValueError("coverage = 'entailment' needs an aggregator model")
        self.estimator = estimator
        self._coverage = coverage
        self._generate = generate

    async def surprisal(self, sentences: Sequence[str]) -> list[float]:
        """Per-sentence surprisal; falls back to ``compression`` when the estimator is unavailable."""
        try:
            return await self.estimator.surprisal(sentences)
        except SurprisalUnavailable as exc:
            logger.warning("surprisal estimator %r unavailable (%s); using 'compression' instead", self.estimator.name, exc)
            self.estimator = CompressionSurprisal()
            return await self.estimator.surprisal(sentences)

    async def covered(self, units: Sequence[Unit], body: str) -> list[bool]:
        """Whether each unit is present in ``body``."""
        sentences = _Sentences(split_units(body))
        by_overlap = [sentences.covers(unit) for unit in units]
        if self._coverage == "overlap" or not units:
            return by_overlap
        assert self._generate is not None
        listing = "\n".join(f"{i}. {unit.text}" for i, unit in enumerate(units, 1))
        reply = await self._generate(AGGREGATOR_SYSTEM_PROMPT, ENTAILMENT_TEMPLATE.format(prompt=body, instructions=listing))
        verdicts = _parse_verdicts(reply, len(units))
        return [verdicts.get(i, by_overlap[i]) for i in range(len(units))]

    async def measure(self, body: str, units: Sequence[Unit], client_bodies: Sequence[str], *, complete: bool = False) -> Candidate:
        """A candidate merge with its coverage, missing units, surprisal, UID score and length ratio
        (``complete``: ``body`` is made of the units themselves, so every one is covered)."""
        covered = [True] * len(units) if complete else await self.covered(units, body)
        surprisal = await self.surprisal(split_units(body))
        return {
            "body": body,
            "covered": sum(covered),
            "missing": [unit.text for unit, ok in zip(units, covered, strict=True) if not ok],
            "surprisal": surprisal,
            "uid_score": round(uid_score(surprisal), 4),
            "length_ratio": round(length_ratio(body, client_bodies), 4),
        }
