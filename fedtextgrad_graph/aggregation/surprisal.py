"""Per-sentence surprisal of a prompt: an estimator interface, its registry and two estimators.

- ``compression`` (the default, offline, no download): the bits a sentence adds to the raw-DEFLATE
  (zlib, level 9) compression of the prompt text before it, per word of the sentence. Text the
  compressor can predict from what came before (repeated words and phrases) costs few bits; new
  words cost many. Limits: it is not a language model. It knows nothing of English beyond the
  prompt itself, so the first sentence always costs the most; it sees repetition of character
  strings, not of meaning (a paraphrase counts as new); output is whole bytes, so a very short
  sentence's figure is coarse (8 bits over its few words).
- ``logprobs``: token log-probabilities of the prompt under the aggregator's model, from an
  OpenAI-compatible server's legacy ``/v1/completions`` endpoint (``echo=true, logprobs=0,
  max_tokens=0``: vLLM and llama.cpp-style servers return the prompt tokens' logprobs). Chat
  completions only return logprobs of *generated* tokens, so they cannot score a given prompt.
  When the endpoint does not return prompt logprobs, :class:`SurprisalUnavailable` is raised
  (the caller falls back to ``compression`` with a warning).

Every estimator reports bits per word, so UID scores from either are comparable in kind.
"""

from __future__ import annotations

import math
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = [
    "CompressionSurprisal",
    "LogprobsSurprisal",
    "PromptLogprobs",
    "SurprisalEstimator",
    "SurprisalUnavailable",
    "completions_logprobs",
    "create_estimator",
    "estimator_names",
    "parse_completion_logprobs",
    "register_estimator",
]

_WORD = re.compile(r"\w+")

PromptLogprobs = Callable[[str], Awaitable[list[tuple[int, float]]]]
"""``await logprobs(text)``: ``(character offset, natural-log probability)`` per token of ``text``."""


class SurprisalUnavailable(RuntimeError):
    """The estimator cannot score text here (e.g. the endpoint returns no prompt logprobs)."""


def _words(text: str) -> int:
    return max(1, len(_WORD.findall(text)))


class SurprisalEstimator(ABC):
    """Scores each sentence of a prompt in context: bits per word, in the sentences' order.

    Subclasses set ``name`` (the ``[aggregation] surprisal`` value) and ``needs_endpoint`` (whether
    they call the aggregator's server); register them with :func:`register_estimator`.
    """

    name: str
    unit: str = "bits/word"
    needs_endpoint: bool = False

    @abstractmethod
    async def surprisal(self, sentences: Sequence[str]) -> list[float]:
        """The surprisal of each sentence given the ones before it (joined by spaces)."""


class CompressionSurprisal(SurprisalEstimator):
    """Bits a sentence adds to the DEFLATE-compressed preceding text, per word (see module docs)."""

    name = "compression"

    async def surprisal(self, sentences: Sequence[str]) -> list[float]:
        # One running compressor: the bits of each prefix are a copy of it flushed, the same
        # bits as compressing the prefix anew, without recompressing it for every sentence.
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        written = 0
        previous = 0
        started = False  # whether any text precedes: sentences are joined by spaces
        values: list[float] = []
        for sentence in sentences:
            written += len(packer.compress((f" {sentence}" if started else sentence).encode()))
            started = started or bool(sentence)
            bits = 8 * (written + len(packer.copy().flush()))
            values.append((bits - previous) / _words(sentence))
            previous = bits if started else 0
        return values


class LogprobsSurprisal(SurprisalEstimator):
    """Minus the summed token log2-probabilities of each sentence, per word (see module docs).

    Args:
        logprobs: Returns the prompt tokens' offsets and logprobs (see :func:`completions_logprobs`).
    """

    name = "logprobs"
    needs_endpoint = True

    def __init__(self, logprobs: PromptLogprobs) -> None:
        self._logprobs = logprobs

    async def surprisal(self, sentences: Sequence[str]) -> list[float]:
        text = " ".join(sentences)
        tokens = await self._logprobs(text)
        starts: list[int] = []
        offset = 0
        for sentence in sentences:
            starts.append(offset)
            offset += len(sentence) + 1
        nats = [0.0] * len(sentences)
        for at, logprob in tokens:
            index = max(0, sum(1 for start in starts if start <= at) - 1)
            nats[index] -= logprob
        return [n / math.log(2) / _words(s) for n, s in zip(nats, sentences, strict=True)]


async def _no_endpoint(text: str) -> list[tuple[int, float]]:
    raise SurprisalUnavailable("no OpenAI-compatible endpoint to ask for prompt logprobs")


_REGISTRY: dict[str, type[SurprisalEstimator]] = {}


def register_estimator(cls: type[SurprisalEstimator]) -> type[SurprisalEstimator]:
    """Make an estimator available as ``[aggregation] surprisal = cls.name`` (usable as a decorator)."""
    _REGISTRY[cls.name] = cls
    return cls


register_estimator(CompressionSurprisal)
register_estimator(LogprobsSurprisal)


def estimator_names() -> list[str]:
    """The registered estimator names."""
    return sorted(_REGISTRY)


def create_estimator(name: str, logprobs: PromptLogprobs | None = None) -> SurprisalEstimator:
    """The registered estimator ``name``; one that ``needs_endpoint`` uses ``logprobs``."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown surprisal estimator {name!r}; choose one of {', '.join(estimator_names())}")
    if not cls.needs_endpoint:
        return cls()
    return cls(logprobs or _no_endpoint)  # type: ignore[call-arg]


def parse_completion_logprobs(body: Any) -> list[tuple[int, float]]:
    """``(offset, logprob)`` per prompt token of a ``/v1/completions`` ``echo`` reply.

    Raises:
        SurprisalUnavailable: The reply holds no prompt-token logprobs.
    """
    try:
        logprobs = body["choices"][0]["logprobs"]
        offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
    except (KeyError, IndexError, TypeError):
        raise SurprisalUnavailable("the endpoint's /completions reply has no prompt logprobs (echo=true, logprobs=0)") from None
    # The first token has no logprob (nothing precedes it): it adds nothing.
    pairs = [(int(at), float(lp)) for at, lp in zip(offsets, values, strict=False) if lp is not None]
    if not pairs:
        raise SurprisalUnavailable("the endpoint's /completions reply has no prompt logprobs (echo=true, logprobs=0)")
    return pairs


def completions_logprobs(base_url: str, model: str, *, api_key: str | None = None, timeout_s: float | None = 120.0) -> PromptLogprobs:
    """Prompt-token logprobs from ``POST {base_url}/completions`` (``echo=true, logprobs=0, max_tokens=0``)."""

    async def logprobs(text: str) -> list[tuple[int, float]]:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        request = {"model": model, "prompt": text, "echo": True, "logprobs": 0, "max_tokens": 0}
        try:
            async with httpx.AsyncClient(timeout=timeout_s) as client:
                reply = await client.post(f"{base_url.rstrip('/')}/completions", json=request, headers=headers)
        except httpx.HTTPError as exc:
            raise SurprisalUnavailable(f"{base_url}/completions failed: {exc!r}") from None
        if reply.status_code != 200:
            raise SurprisalUnavailable(f"{base_url}/completions answered HTTP {reply.status_code}")
        try:
            body = reply.json()
        except ValueError:
            raise SurprisalUnavailable(f"{base_url}/completions returned a body that is not JSON") from None
        return parse_completion_logprobs(body)

    return logprobs
