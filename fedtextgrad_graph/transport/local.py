"""In-process clients: every site lives in this process (single machine, large simulations)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import FedTextGradConfig
from ..data import DataError, FederatedData, build_federated_data
from ..site import SITE_ROLES, Site, build_client_graph
from ..site._textgrad import prefetch_textgrad
from ..wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest
from .base import ClientTransport, ClientUnavailable, register_transport

if TYPE_CHECKING:
    from ..server.runtime import FederationRuntime
    from ..site.client import ClientGraph

__all__ = ["LocalTransport"]


@register_transport
class LocalTransport(ClientTransport):
    """Runs each client's site in this process, sharing the run's LLM gateway (one concurrency
    limit for every call) and worker threads. The client subgraph runs inside the round graph,
    so it shares its checkpoints: an interrupted client resumes from its last local step.

    Args:
        sites: The clients' sites, by client id.
    """

    kind = "local"

    def __init__(self, sites: dict[str, Site]) -> None:
        self.sites = sites
        self._graph = build_client_graph(self._site)
        for site in sites.values():
            site.client_graph = self._graph

    @classmethod
    def load_data(cls, config: FedTextGradConfig) -> FederatedData:
        """Every task's splits, and each client's private share of them."""
        return build_federated_data(config)

    @classmethod
    def create(cls, runtime: FederationRuntime) -> LocalTransport:
        """Sites for every client of the config, each with its private share of the data."""
        config = runtime.config
        data = runtime.client_data
        missing = [cid for cid in config.federation.client_ids() if cid not in data]
        if missing:
            raise DataError(f"no data for client(s) {missing}")
        sites = {
            cid: Site(
                client_id=cid,
                data=data[cid],
                task=config.tasks[data[cid].task],
                models=runtime.models,
                gateway=runtime.gateway,
                bridge=runtime.bridge,
                scorer=runtime.scorers.get(data[cid].task),
                guard_config=config.guard,
            )
            for cid in config.federation.client_ids()
        }
        runtime.models.build_all(SITE_ROLES, client_ids=list(sites))
        # TextGrad's first import is seconds of blocking work: start it now on its own thread, so
        # it neither delays the first LLM call nor blocks the event loop inside the first client
        # step (async servers such as `langgraph dev` refuse that).
        prefetch_textgrad()
        return cls(sites)

    def _site(self, client_id: str) -> Site:
        try:
            return self.sites[client_id]
        except KeyError:
            raise ClientUnavailable(f"no client {client_id!r} in this process") from None

    @property
    def client_graph(self) -> ClientGraph:
        return self._graph

    async def train(self, request: TrainRequest) -> ClientUpdate:
        return await self._site(request["client_id"]).train(request)

    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        return await self._site(request["client_id"]).evaluate(request)
