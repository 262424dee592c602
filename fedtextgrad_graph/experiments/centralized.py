"""The centralized baseline's client: one site holding the pooled training data of every task
(``[transport] kind = "centralized"``), each example scored with its own task's metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import FedTextGradConfig, TaskConfig
from ..data import ClientData, DataError, FederatedData, TaskSplits, load_task
from ..metrics import Generate, Scorer, create_scorer
from ..server.runtime import FederationRuntime
from ..site import SITE_ROLES, Site
from ..site._textgrad import prefetch_textgrad
from ..transport import LocalTransport, register_transport

__all__ = ["CentralizedTransport", "PooledSite", "pooled_data"]


def pooled_data(config: FedTextGradConfig) -> FederatedData:
    """Every task of ``config`` (the server holds their splits), and its one client's data:
    the train (and validation, test) splits of all tasks, in the config's task order.

    Raises:
        DataError: A missing or malformed data file, or the config has more than one client.
    """
    ids = config.federation.client_ids()
    if len(ids) != 1:
        raise DataError(f"federation: the centralized transport trains one client on the pooled data, not {len(ids)}")
    data_dir = Path(config.run.data_dir or ".")
    tasks = {name: load_task(name, task, data_dir) for name, task in config.tasks.items()}
    pooled = ClientData(
        task=config.client_task(ids[0]),
        train=[ex for splits in tasks.values() for ex in splits.train],
        validation=[ex for splits in tasks.values() for ex in splits.validation],
        test=[ex for splits in tasks.values() for ex in splits.test],
    )
    return FederatedData(clients={ids[0]: pooled}, tasks=tasks)


def _task_of_examples(tasks: dict[str, TaskSplits], configs: dict[str, TaskConfig]) -> dict[tuple[str, str], str]:
    """``(question, target) -> task`` over every split; the same pair in two tasks with
    different metrics cannot be scored (which metric?)."""
    owner: dict[tuple[str, str], str] = {}
    for name, splits in tasks.items():
        for ex in (*splits.train, *splits.validation, *splits.test):
            other = owner.setdefault((ex.input, ex.target), name)
            if other != name and configs[other].metric != configs[name].metric:
                raise DataError(
                    f"tasks.{other} and tasks.{name} hold the same example with different metrics "
                    f"({configs[other].metric}, {configs[name].metric}); the pooled client cannot tell how to score it"
                )
    return owner


@dataclass
class PooledSite(Site):
    """A site whose examples come from several tasks: each is scored with the metric of the
    task it came from (``task_of``), or the scorer given for that task (``task_scorers``)."""

    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    task_of: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    task_scorers: dict[str, Scorer] = field(default_factory=dict)

    def score(self, round: int | None = None, judge: Generate | None = None) -> Scorer:
        scorers: dict[str, Scorer] = {}
        for name, task in self.tasks.items():
            if name in self.task_scorers:
                scorers[name] = self.task_scorers[name]
            else:
                scorers[name] = create_scorer(task.metric, (judge or self.generate("judge", round)) if task.metric == "judge" else None)

        async def pooled(question: str, prediction: str, target: str) -> bool:
            return await scorers[self.task_of[(question, target)]](question, prediction, target)

        return pooled


@register_transport
class CentralizedTransport(LocalTransport):
    """In process, like ``local``, but with one client that holds the pooled data of every
    task (:func:`pooled_data`): the centralized TextGrad baseline."""

    kind = "centralized"

    @classmethod
    def load_data(cls, config: FedTextGradConfig) -> FederatedData:
        return pooled_data(config)

    @classmethod
    def create(cls, runtime: FederationRuntime) -> CentralizedTransport:
        config = runtime.config
        (client_id,) = config.federation.client_ids()  # pooled_data checked there is one
        data = runtime.client_data[client_id]
        tasks = {name: config.tasks[name] for name in runtime.evaluation}
        site = PooledSite(
            client_id=client_id,
            data=data,
            task=config.tasks[data.task],
            models=runtime.models,
            gateway=runtime.gateway,
            bridge=runtime.bridge,
            guard_config=config.guard,
            tasks=tasks,
            task_of=_task_of_examples(runtime.evaluation, tasks),
            task_scorers={name: runtime.scorers[name] for name in tasks if name in runtime.scorers},
        )
        runtime.models.build_all(SITE_ROLES, client_ids=[client_id])
        prefetch_textgrad()  # seconds of import: on its own thread, not inside the first client step
        return cls({client_id: site})
