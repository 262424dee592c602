"""Client partitioning for in-process federations: each client's private share of the data."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from ..config import FedTextGradConfig
from .loaders import DataError, Example
from .splits import TaskSplits, load_task

__all__ = ["ClientData", "FederatedData", "build_federated_data"]


@dataclass(frozen=True)
class ClientData:
    """A client's private examples. Never enters the graph state or crosses the wire."""

    task: str
    train: list[Example]
    validation: list[Example]
    test: list[Example] = field(default_factory=list)


@dataclass(frozen=True)
class FederatedData:
    """Each client's private data, and every used task's splits (held by the server)."""

    clients: dict[str, ClientData]
    tasks: dict[str, TaskSplits]


def _partition(examples: list[Example], client_ids: list[str], seed: int, what: str) -> dict[str, list[Example]]:
    if len(examples) < len(client_ids):
        raise DataError(f"{what}: {len(client_ids)} clients but only {len(examples)} examples to share")
    order = list(range(len(examples)))
    random.Random(f"{seed}:{what}").shuffle(order)
    return {cid: [examples[j] for j in order[i :: len(client_ids)]] for i, cid in enumerate(client_ids)}


def build_federated_data(config: FedTextGradConfig) -> FederatedData:
    """Load every task and give each client its private train and validation data.

    Clients that share a task (all of them in a homogeneous run) get a seeded, disjoint
    share of its train and validation splits; in a heterogeneous run each task is owned
    by its clients. The server keeps every used task's full validation and test splits.
    """
    data_dir = Path(config.run.data_dir or ".")
    ids = config.federation.client_ids()
    by_task: dict[str, list[str]] = {}
    for cid in ids:
        by_task.setdefault(config.client_task(cid), []).append(cid)
    tasks = {name: load_task(name, config.tasks[name], data_dir) for name in by_task}
    clients: dict[str, ClientData] = {}
    for name, members in by_task.items():
        seed = config.run.seed
        train = _partition(tasks[name].train, members, seed, f"tasks.{name} train")
        # Validation shares are only used by federated evaluation; the server scores the whole split.
        val = (
            _partition(tasks[name].validation, members, seed, f"tasks.{name} validation")
            if config.evaluation.mode == "federated"
            else {cid: [] for cid in members}
        )
        clients.update({cid: ClientData(name, train[cid], val[cid]) for cid in members})
    return FederatedData(clients={cid: clients[cid] for cid in ids}, tasks=tasks)
