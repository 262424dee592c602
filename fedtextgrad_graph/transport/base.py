"""How the server reaches clients: one interface, a registry of implementations."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import FedTextGradConfig
from ..data import FederatedData, load_server_tasks
from ..wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest

if TYPE_CHECKING:
    from ..server.runtime import FederationRuntime
    from ..site.client import ClientGraph

__all__ = [
    "ClientTransport",
    "ClientUnavailable",
    "TransportError",
    "register_transport",
    "transport_class",
    "transport_kinds",
]


class TransportError(RuntimeError):
    """The transport cannot start: the federation is unreachable or misconfigured."""


class ClientUnavailable(RuntimeError):
    """A client could not be reached (not connected, gone, refused): it is dropped this round."""


class ClientTransport(ABC):
    """Carries training and evaluation requests to clients and their replies back.

    The round graph's ``client_optimizer`` node calls :meth:`train` once per selected client
    and round; federated evaluation calls :meth:`evaluate`. Implementations raise
    :class:`ClientUnavailable` (or any error) for a client that cannot answer; the round
    graph drops that client under its quorum rule.
    """

    kind: ClassVar[str]
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    """Set by the run to hear about the transport's own progress (sites connecting)."""

    @classmethod
    @abstractmethod
    def create(cls, runtime: FederationRuntime) -> ClientTransport:
        """The transport for a run, from its config (``[transport]``) and the server's runtime."""

    @classmethod
    def load_data(cls, config: FedTextGradConfig) -> FederatedData:
        """The data the server process loads for a run over this transport: by default only
        the server-held evaluation splits (clients keep theirs)."""
        return FederatedData(clients={}, tasks=load_server_tasks(config))

    async def start(self, *, run_id: str) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Connect before the first request of run ``run_id``, so an unreachable federation
        fails early."""

    @abstractmethod
    async def train(self, request: TrainRequest) -> ClientUpdate:
        """Run a client's local steps and return its upload."""

    @abstractmethod
    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        """Have a client score a prompt on its own data; only counts come back."""

    async def aclose(self) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Release what the transport holds (connections, threads)."""

    @property
    def client_graph(self) -> ClientGraph | None:
        """The client subgraph, when clients run in this process (drawn by ``--xray``)."""
        return None


# Transports with optional dependencies (flower), with modules of their own (processes), or defined
# above this package (the centralized baseline, in experiments/), are registered by import path and
# imported on first use.
_REGISTRY: dict[str, type[ClientTransport] | str] = {
    "flower": "fedtextgrad_graph.transport.flower.server_transport:FlowerTransport",
    "processes": "fedtextgrad_graph.transport.processes.server_transport:ProcessTransport",
    "centralized": "fedtextgrad_graph.experiments.centralized:CentralizedTransport",
}


def register_transport(cls: type[ClientTransport]) -> type[ClientTransport]:
    """Make a transport available as ``[transport] kind = cls.kind`` (usable as a decorator)."""
    _REGISTRY[cls.kind] = cls
    return cls


def transport_kinds() -> list[str]:
    return sorted(_REGISTRY)


def transport_class(kind: str) -> type[ClientTransport]:
    """The registered transport of ``kind``.

    Raises:
        ValueError: No transport of that kind.
        ImportError: Its optional dependencies are missing.
    """
    entry = _REGISTRY.get(kind)
    if entry is None:
        raise ValueError(f"unknown transport {kind!r}; choose one of {', '.join(transport_kinds())}")
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        entry = getattr(importlib.import_module(module), name)
        _REGISTRY[kind] = entry
    return entry
