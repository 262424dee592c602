"""Arms of a comparison: each arm is one way of training, expressed as a change to the run's
config (so every arm is an ordinary run that ``status``, ``report`` and ``resume`` understand).

``centralized`` trains one optimizer on the pooled training data of all clients; every
registered aggregation strategy is an arm of its own (FedTextGrad with that strategy).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from ..aggregation import aggregator_names
from ..config import FedTextGradConfig, parse_config

__all__ = [
    "CENTRALIZED_CLIENT",
    "Arm",
    "CentralizedArm",
    "StrategyArm",
    "arm_names",
    "centralized_config",
    "create_arm",
    "parse_arms",
    "register_arm",
]

CENTRALIZED_CLIENT = "centralized"
"""The id of the one client of the centralized arm."""


class Arm(ABC):
    """One compared setting. Subclasses set ``name`` and ``description`` and implement
    :meth:`configure`; register them with :func:`register_arm`."""

    name: str
    description: str

    @abstractmethod
    def configure(self, config: FedTextGradConfig) -> FedTextGradConfig:
        """The config of this arm's run, from the comparison's config.

        Raises:
            ConfigError: The arm cannot run this config.
        """


class StrategyArm(Arm):
    """FedTextGrad with one aggregation strategy: the config as given, with that strategy."""

    def __init__(self, strategy: str) -> None:
        self.name = strategy
        self.description = f"FedTextGrad, client prompts merged by the {strategy} strategy"

    def configure(self, config: FedTextGradConfig) -> FedTextGradConfig:
        data = config.model_dump(mode="json")
        data["aggregation"]["strategy"] = self.name
        return parse_config(data, source=f"{self.name} arm")


class CentralizedArm(Arm):
    """The centralized TextGrad baseline (see :func:`centralized_config`)."""

    name = "centralized"
    description = "one TextGrad optimizer on the pooled training data of all clients"

    def configure(self, config: FedTextGradConfig) -> FedTextGradConfig:
        return centralized_config(config)


def centralized_config(config: FedTextGradConfig) -> FedTextGradConfig:
    """One client (``centralized``) whose training data is every task's whole training split:
    the examples the federated clients share among them, all tasks pooled, each scored with
    its own task's metric (``[transport] kind = "centralized"``, see :mod:`.centralized`).

    The same local steps, batch size, proximal rule, rounds, convergence rules, prompts and
    models (the run-level ones: per-client model overrides have no client to apply to). With
    one upload there is nothing to merge (``concat`` passes it through unchanged) or to screen
    (no screens). The server holds every task's data, so it scores validation and test itself
    (``[evaluation] mode = "server"``) on the same splits the federated arms use. Tasks no
    client trains on are left out.
    """
    used = list(dict.fromkeys(config.client_task(cid) for cid in config.federation.client_ids()))
    data = config.model_dump(mode="json")
    data["tasks"] = {name: data["tasks"][name] for name in used}
    federation = data["federation"]
    federation.update(partition="homogeneous", task=used[0], num_clients=None, clients=[{"id": CENTRALIZED_CLIENT}], sampling_rate=1.0)
    data["aggregation"]["strategy"] = "concat"
    data["screening"]["screens"] = []
    data["evaluation"]["mode"] = "server"
    data["transport"] = {"kind": "centralized"}
    return parse_config(data, source="centralized arm")


_ARMS: dict[str, Arm] = {}


def register_arm(arm: Arm) -> Arm:
    """Make ``arm`` available by its name (replacing a strategy arm of the same name)."""
    _ARMS[arm.name] = arm
    return arm


register_arm(CentralizedArm())


def arm_names() -> list[str]:
    """Every arm: the registered ones (``centralized`` first), then one per registered
    aggregation strategy."""
    return [*_ARMS, *(name for name in aggregator_names() if name not in _ARMS)]


def create_arm(name: str) -> Arm:
    """The arm called ``name``.

    Raises:
        ValueError: No such arm (the message lists the known ones).
    """
    if name in _ARMS:
        return _ARMS[name]
    if name in aggregator_names():
        return StrategyArm(name)
    raise ValueError(f"unknown arm {name!r}; choose from {', '.join(arm_names())}")


def parse_arms(names: str | Iterable[str]) -> list[Arm]:
    """Arms from a comma-separated list (``"centralized,uid"``) or names, in the order given.

    Raises:
        ValueError: An unknown, empty or repeated name.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    arms: list[Arm] = []
    for raw in items:
        name = raw.strip()
        if not name:
            raise ValueError(f"empty arm name in {','.join(items)!r}; choose from {', '.join(arm_names())}")
        if any(arm.name == name for arm in arms):
            raise ValueError(f"arm {name!r} is listed twice")
        arms.append(create_arm(name))
    if not arms:
        raise ValueError(f"no arm given; choose from {', '.join(arm_names())}")
    return arms
