"""The upload guard: a client's new prompt is checked against its own data before it is kept.

It runs on the site, inside the client's local step, so nothing it catches reaches the server,
the checkpoint, the site's result cache or any log. A check finds spans of the prompt
(:class:`Finding`: a kind and character offsets, never a copy of the text); the guard then
removes them (``redact``) or refuses the prompt (``reject``).

Checks are registered by name (``[guard] checks``): ``verbatim`` (runs of ``min_words`` or
more words from any of the client's examples, inputs and targets) and ``personal_data``
(e-mail addresses, phone numbers, long digit runs). Add your own with :func:`register_check`.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..config import ConfigError, GuardConfig
from ..data import ClientData, Example

__all__ = [
    "Finding",
    "GuardVerdict",
    "PersonalDataCheck",
    "UploadCheck",
    "UploadGuard",
    "VerbatimCheck",
    "check_names",
    "create_upload_guard",
    "register_check",
]

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Finding:
    """A span ``prompt[start:end]`` a check caught, and what kind of text it is."""

    kind: str
    start: int
    end: int


class UploadCheck(ABC):
    """One way of finding private text in a prompt.

    Subclasses set ``name`` (the ``[guard] checks`` entry), implement :meth:`find`, and are
    built once per site by :meth:`create` from the guard's settings and the site's examples.
    """

    name: str

    @classmethod
    @abstractmethod
    def create(cls, config: GuardConfig, examples: Sequence[Example]) -> UploadCheck:
        """This check for a site holding ``examples``."""

    @abstractmethod
    def find(self, prompt: str, *, allowed: str = "") -> list[Finding]:
        """The spans of ``prompt`` this check catches; text that also occurs in ``allowed``
        (what the server sent: it is not the site's to protect) is not caught."""


_REGISTRY: dict[str, type[UploadCheck]] = {}


def register_check(cls: type[UploadCheck]) -> type[UploadCheck]:
    """Make a check available as ``[guard] checks = [cls.name]`` (usable as a decorator)."""
    _REGISTRY[cls.name] = cls
    return cls


def check_names() -> list[str]:
    """The registered check names."""
    return sorted(_REGISTRY)


def _words(text: str) -> Iterator[re.Match[str]]:
    return _WORD.finditer(text)


def _normal(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


def _ngram_hashes(text: str, n: int) -> set[int]:
    words = [_normal(m.group()) for m in _words(text)]
    return {hash(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)}


@register_check
class VerbatimCheck(UploadCheck):
    """Runs of ``min_words`` or more consecutive words from any of the site's examples.

    Words compare case-insensitively and ignore punctuation and spacing between them. The
    examples' word n-grams are kept as a set of hashes (no copy of their text), built once.
    """

    name = "verbatim"

    def __init__(self, texts: Iterable[str], min_words: int) -> None:
        self.min_words = min_words
        self._ngrams: set[int] = set()
        for text in texts:
            self._ngrams |= _ngram_hashes(text, min_words)

    @classmethod
    def create(cls, config: GuardConfig, examples: Sequence[Example]) -> VerbatimCheck:
        return cls((text for ex in examples for text in (ex.input, ex.target)), config.min_words)

    def find(self, prompt: str, *, allowed: str = "") -> list[Finding]:
        n = self.min_words
        words = list(_words(prompt))
        keys = [_normal(m.group()) for m in words]
        public = _ngram_hashes(allowed, n) if allowed else set()
        covered = [False] * len(words)
        for i in range(len(words) - n + 1):
            key = hash(" ".join(keys[i : i + n]))
            if key in self._ngrams and key not in public:
                covered[i : i + n] = [True] * n
        findings, i = [], 0
        while i < len(words):
            if not covered[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(words) and covered[j + 1]:
                j += 1
            findings.append(Finding(self.name, words[i].start(), words[j].end()))
            i = j + 1
        return findings


# The local part starts where a word starts and is at most 64 characters (RFC 5321), so a long
# run of word characters is scanned once, not once per position.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# +CC, (area) or a leading group, then two more groups: "+1 415 555 0100", "(415) 555-0100".
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{2,4}[\s.-])\d{2,4}[\s.-]\d{3,4}(?!\w)")
# Nine or more digits, single spaces or dashes allowed between them; not part of a decimal.
_DIGIT_RUN = re.compile(r"(?<![\w.,])\d(?:[ -]?\d){8,}(?![\w]|[.,]\d)")
_PHONE_DIGITS = 10  # a phone number without "+" or "(area)" has at least this many digits
_PHONE_DIGITS_MARKED = 8


def _phone_like(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return digits >= (_PHONE_DIGITS_MARKED if text[0] in "+(" else _PHONE_DIGITS)


@register_check
class PersonalDataCheck(UploadCheck):
    """E-mail addresses (``email``), phone numbers (``phone``: with ``+`` or an ``(area)`` code
    and 8+ digits, or 10+ digits in groups) and runs of 9+ digits (``digit_run``: ids, cards).

    Ordinary numbers (counts, years, decimals, thousands with commas) are left alone.
    """

    name = "personal_data"

    @classmethod
    def create(cls, config: GuardConfig, examples: Sequence[Example]) -> PersonalDataCheck:
        return cls()

    def find(self, prompt: str, *, allowed: str = "") -> list[Finding]:
        matches = [
            Finding(kind, match.start(), match.end())
            for kind, pattern in (("email", _EMAIL), ("phone", _PHONE), ("digit_run", _DIGIT_RUN))
            for match in pattern.finditer(prompt)
            if match.group() not in allowed and (kind != "phone" or _phone_like(match.group()))
        ]
        findings: list[Finding] = []
        for match in sorted(matches, key=lambda f: (f.start, -f.end)):
            if findings and match.start < findings[-1].end:  # overlapping matches: one span, the widest's kind
                last = findings[-1]
                findings[-1] = Finding(last.kind, last.start, max(last.end, match.end))
            else:
                findings.append(match)
        return findings


@dataclass(frozen=True)
class GuardVerdict:
    """What the guard made of a prompt.

    Attributes:
        prompt: The prompt to keep (redacted if anything was caught), or ``None``: blocked.
        caught: Spans caught, by kind (empty when the prompt is clean).
    """

    prompt: str | None
    caught: dict[str, int] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return self.prompt is None

    @property
    def redacted(self) -> bool:
        return bool(self.caught) and self.prompt is not None


_PUNCT = ".,;:!?"
_OPENS_AT_END = re.compile(r"""(["'“‘(\[])[\s,;:.?!-]*$""")
_CLOSES_AT_START = re.compile(r"""^[\s,;:.?!-]*(["'”’)\]])""")
_CLOSERS = {"(": ")", "[": "]", "“": "”", "‘": "’"}


def _join(left: str, right: str) -> str:
    """``left`` and ``right`` around a removed span, made readable: the quotes or brackets left
    empty, a doubled space or a stray punctuation mark at the cut are dropped; the rest of the
    text is untouched."""
    left, right = left.rstrip(" \t"), right.lstrip(" \t")
    opened, closed = _OPENS_AT_END.search(left), _CLOSES_AT_START.match(right)
    if opened and closed and closed.group(1) == _CLOSERS.get(opened.group(1), opened.group(1)):
        left, right = left[: opened.start()].rstrip(" \t"), right[closed.end() :].lstrip(" \t")
    if right[:1] and right[0] in _PUNCT and (not left or left[-1] in _PUNCT or left.endswith("\n")):
        right = right.lstrip(_PUNCT + " \t")
    if left.endswith("\n") or right.startswith("\n"):
        breaks = max(len(left) - len(left.rstrip("\n")), len(right) - len(right.lstrip("\n")))
        return left.rstrip("\n") + "\n" * breaks + right.lstrip("\n")
    if not left or not right or right[0] in _PUNCT:
        return left + right
    return f"{left} {right}"


def _cut(text: str, findings: Sequence[Finding]) -> str:
    """``text`` without the spans of ``findings`` (which may overlap)."""
    kept, position = "", 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start >= position:
            kept = _join(kept, text[position : finding.start])
        position = max(position, finding.end)
    return _join(kept, text[position:]).strip()


class UploadGuard:
    """The site's checks and what to do with what they catch.

    Args:
        checks: The checks to run on every new prompt.
        action: ``redact`` removes the caught spans and keeps the rest (a prompt left without
            words is blocked); ``reject`` blocks any prompt with a finding.
    """

    def __init__(self, checks: Sequence[UploadCheck], action: str = "redact") -> None:
        if action not in ("redact", "reject"):
            raise ValueError(f"unknown guard action {action!r}; choose redact or reject")
        self.checks = list(checks)
        self.action = action

    def find(self, prompt: str, *, allowed: str = "") -> list[Finding]:
        """Every check's findings in ``prompt``, in order of position."""
        found = [f for check in self.checks for f in check.find(prompt, allowed=allowed)]
        return sorted(found, key=lambda f: (f.start, f.end))

    def inspect(self, prompt: str, *, allowed: str = "") -> GuardVerdict:
        """The prompt to keep, or ``None`` (blocked), and what was caught in it.

        ``allowed``: text the site received (the global prompt); spans found in it are not new.
        """
        findings = self.find(prompt, allowed=allowed)
        if not findings:
            return GuardVerdict(prompt)
        caught = dict(Counter(f.kind for f in findings))
        if self.action == "reject":
            return GuardVerdict(None, caught)
        redacted = _cut(prompt, findings)
        return GuardVerdict(redacted if _WORD.search(redacted) else None, caught)


def create_upload_guard(config: GuardConfig, data: ClientData) -> UploadGuard | None:
    """The guard a site runs over its own data (every split it holds), or ``None`` when off.

    Raises:
        ConfigError: ``checks`` names an unregistered check.
    """
    if not config.enabled:
        return None
    unknown = [name for name in config.checks if name not in _REGISTRY]
    if unknown:
        raise ConfigError(f"guard.checks: unknown check {unknown[0]!r}; choose from {', '.join(check_names())}")
    examples = [*data.train, *data.validation, *data.test]
    return UploadGuard([_REGISTRY[name].create(config, examples) for name in config.checks], config.action)
