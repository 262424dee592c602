"""In-process clients: every site lives in this process (single machine, large simulations)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..config import FedTextGradConfig
from ..data import ClientData, DataError, FederatedData, build_federated_data
from ..metrics import Scorer
from ..models import LLMGateway, ModelRouter, ThreadBridge
from ..site import SITE_ROLES, Site, build_client_graph
from ..site._textgrad import prefetch_textgrad
from ..wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest
from .base import ClientTransport, ClientUnavailable, register_transport

if TYPE_CHECKING:
    from ..server.runtime import FederationRuntime
    from ..site.client import ClientGraph

__all__ = ["LocalTransport", "build_sites", "client_shares"]


def client_shares(runtime: FederationRuntime) -> dict[str, ClientData]:
    """Each configured client's private share of the run's data, or :class:`DataError`."""
    client_ids = runtime.config.federation.client_ids()
    missing = [cid for cid in client_ids if cid not in runtime.client_data]
    if missing:
        raise DataError(f"no data for client(s) {missing}")
    return {cid: runtime.client_data[cid] for cid in client_ids}


def build_sites(
    config: FedTextGradConfig,
    data: Mapping[str, ClientData],
    *,
    models: ModelRouter,
    gateway: LLMGateway,
    bridge: ThreadBridge,
    scorers: Mapping[str, Scorer],
) -> dict[str, Site]:
    """A site for each client of ``data`` in this process, sharing ``gateway`` and ``bridge``;
    their models are built now, so bad settings fail before any LLM call."""
    sites = {
        cid: Site(
            client_id=cid,
            data=share,
            task=config.tasks[share.task],
            models=models,
            gateway=gateway,
            bridge=bridge,
            scorer=scorers.get(share.task),
            guard_config=config.guard,
        )
        for cid, share in data.items()
    }
    models.build_all(SITE_ROLES, client_ids=list(sites))
    return sites


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
        sites = build_sites(
            runtime.config,
            client_shares(runtime),
            models=runtime.models,
            gateway=runtime.gateway,
            bridge=runtime.bridge,
            scorers=runtime.scorers,
        )
        # TextGrad's first import is blocking work (0.6 s of CPU here): start it now on its own
        # thread, so it neither delays the first LLM call nor blocks the event loop inside the
        # first client step (async servers such as `langgraph dev` refuse that).
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
