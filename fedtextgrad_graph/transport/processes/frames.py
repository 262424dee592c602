"""What crosses between the server and a worker process: pickled messages, each prefixed by its
length, over the worker's stdin (requests) and stdout (replies).

Both ends are this package on one machine, started by one user: the frames carry the clients'
data and ready models to the worker, which a site's wire never does.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from ...config import FedTextGradConfig
from ...data import ClientData
from ...metrics import Scorer
from ...models import Answerer, LLMCallRecord
from ...wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest

__all__ = ["CallMade", "Cancel", "Failed", "Logged", "Replied", "Request", "WorkerSetup", "encode", "read_frame"]

_HEADER = struct.Struct(">Q")


@dataclass(frozen=True)
class WorkerSetup:
    """The first frame a worker reads: the run's config, its clients' private data, the ready
    models (by role or ``"<client_id>.<role>"``) and metrics the run was given, and its share
    of the run's limits (``max_concurrency`` calls in flight; ``limits_share`` of each
    endpoint's limits)."""

    config: FedTextGradConfig
    clients: dict[str, ClientData]
    max_concurrency: int
    limits_share: float
    models: dict[str, BaseChatModel | Answerer] = field(default_factory=dict)
    scorers: dict[str, Scorer] = field(default_factory=dict)
    log_level: int = 30


@dataclass(frozen=True)
class Request:
    """Train or score for one client; ``id`` pairs it with its reply."""

    id: int
    kind: Literal["train", "evaluate"]
    body: TrainRequest | EvaluateRequest


@dataclass(frozen=True)
class Cancel:
    """The server gave up on request ``id`` (its deadline passed, or the run stopped)."""

    id: int


@dataclass(frozen=True)
class Replied:
    id: int
    result: ClientUpdate | EvaluateResult


@dataclass(frozen=True)
class Failed:
    """Request ``id`` raised (``id`` ``None``: the worker could not start)."""

    id: int | None
    error: str


@dataclass(frozen=True)
class CallMade:
    """A worker's LLM call finished (metadata only), for the run's call log."""

    record: LLMCallRecord


@dataclass(frozen=True)
class Logged:
    """A worker logged this (a ``fedtextgrad_graph`` logger, at the run's level or above), for
    the server's logging: an endpoint outage's warning reads the same as in-process."""

    name: str
    level: int
    message: str


def encode(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> Any | None:
    """The next message, or ``None`` once the other end closed the pipe."""
    try:
        header = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        return pickle.loads(await reader.readexactly(size))
    except asyncio.IncompleteReadError:
        return None
