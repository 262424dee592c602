"""An optimizer that quotes private text in its improved prompts, and a detector of that text,
for the upload-guard tests (unit, in-process and through the CLI)."""

from __future__ import annotations

import re

from fedtextgrad_graph.config import DEFAULT_FORMAT_INSTRUCTION
from fedtextgrad_graph.models.simulated import simulated_reply
from fedtextgrad_graph.text import compose_prompt

EMAIL = "ada.lovelace@example.org"
MIN_WORDS = 6  # the guard's default
_WORD = re.compile(r"[^\W_]+")
_TAGGED = re.compile(r"<IMPROVED_VARIABLE>(.*?)</IMPROVED_VARIABLE>", re.DOTALL)


def copying_reply(copied: list[str], system: str, user: str) -> str:
    """The simulated model's reply, except that an optimizer's improved prompt also quotes the
    first example of its request ("For example: ...") and an e-mail address, as real LLMs do.
    Each quoted example is appended to ``copied``."""
    reply = simulated_reply(system, user)
    if "IMPROVED_VARIABLE" not in system:
        return reply
    example = re.search(r"<LM_INPUT>(.*?)</LM_INPUT>", user, re.DOTALL)
    assert example is not None, "the optimizer request quotes no example"
    copied.append(example.group(1).strip())
    tagged = _TAGGED.search(reply)
    current = re.search(r"<LM_SYSTEM_PROMPT>(.*?)</LM_SYSTEM_PROMPT>", user, re.DOTALL)
    body = tagged.group(1) if tagged else current.group(1) if current else ""
    quoted = f'{body} For example: "{copied[-1]}" Questions go to {EMAIL}.'
    return f"<IMPROVED_VARIABLE>{compose_prompt(quoted, DEFAULT_FORMAT_INSTRUCTION)}</IMPROVED_VARIABLE>"


def ngrams(text: str, n: int = MIN_WORDS) -> set[str]:
    words = [w.casefold() for w in _WORD.findall(text)]
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def leaks(blob: bytes | str, copied: list[str]) -> list[str]:
    """What of the copied examples (any ``MIN_WORDS``-word span) or the e-mail ``blob`` holds."""
    text = blob.decode("utf-8", errors="replace") if isinstance(blob, bytes) else blob
    found = ngrams(text) & set().union(*(ngrams(example) for example in copied))
    return sorted(found) + ([EMAIL] if EMAIL in text else [])
