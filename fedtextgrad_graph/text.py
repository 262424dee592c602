"""Prompt text shared by server and sites: the format instruction kept last, and token counts."""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["check_tokenizer", "compose_prompt", "count_tokens", "strip_format"]

_WORDPIECE = re.compile(r"\w+|[^\w\s]")


def strip_format(prompt: str, format_instruction: str) -> str:
    """The prompt without any copy of the format instruction (however its spaces were reflowed)."""
    words = format_instruction.split()
    body = re.sub(r"\s+".join(map(re.escape, words)), " ", prompt) if words else prompt
    return "\n".join(" ".join(line.split()) for line in body.strip().splitlines()).strip()


def compose_prompt(body: str, format_instruction: str) -> str:
    """``body`` followed by the format instruction (if any) as the last sentence."""
    body = strip_format(body, format_instruction)
    return " ".join(part for part in (body, format_instruction.strip()) if part)


@functools.cache
def _tiktoken_encoding(name: str) -> Any:
    import tiktoken

    return tiktoken.get_encoding(name)


def check_tokenizer(name: str) -> None:
    """Load a tiktoken vocabulary now (it downloads once), so a missing one fails early."""
    if name != "wordpiece":
        try:
            _tiktoken_encoding(name)
        except Exception as exc:  # noqa: BLE001 - a download, cache or name failure: each is one line
            raise ValueError(f"tokenizer {name!r} is not available ({exc}); use tokenizer = \"wordpiece\" offline") from None


def count_tokens(text: str, tokenizer: str = "wordpiece") -> int:
    """Tokens in ``text``: tiktoken's ``o200k_base``/``cl100k_base``, or ``wordpiece`` (words and
    punctuation marks: offline, deterministic, close to BPE counts for English prose)."""
    if tokenizer == "wordpiece":
        return len(_WORDPIECE.findall(text))
    return len(_tiktoken_encoding(tokenizer).encode(text))
