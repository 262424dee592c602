"""One client on its site: its private data, its models and its LLM gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import GuardConfig, TaskConfig
from ..data import ClientData, Example, sample_examples
from ..metrics import Generate, Scorer, create_scorer, score_prompt
from ..models import LLMGateway, ModelRouter, ThreadBridge
from ..models.call_context import call_context
from ..models.usage import metering
from ..replies import ReplyCounts, is_empty_reply
from ..wire import ClientUpdate, EvaluateRequest, EvaluateResult, ReplyCount, TrainRequest
from .client import build_client_graph, run_client
from .guard import UploadGuard, create_upload_guard

if TYPE_CHECKING:
    from .client import ClientGraph

__all__ = ["SITE_ROLES", "Site"]

SITE_ROLES = ("task", "optimizer", "judge")
"""The roles whose models a site uses (the aggregator runs on the server)."""


@dataclass
class Site:
    """Everything one client needs to train and evaluate where its data lives.

    Args:
        client_id: The client this site serves.
        data: Its private examples (they never leave this object).
        task: Its task's settings (the metric).
        models: Resolves this client's model of each role.
        gateway: Every LLM call goes through it (shared by all clients in-process).
        bridge: Worker threads for TextGrad (shared in-process).
        scorer: A metric replacing the task's configured one.
        client_graph: The client-optimizer subgraph to run; by default one of its own.
        guard_config: Its upload guard's settings; the guard (``guard``, ``None`` when off)
            is built from this site's own examples, once.
    """

    client_id: str
    data: ClientData
    task: TaskConfig
    models: ModelRouter
    gateway: LLMGateway
    bridge: ThreadBridge
    scorer: Scorer | None = None
    client_graph: ClientGraph | None = field(default=None, repr=False)
    guard_config: GuardConfig = field(default_factory=GuardConfig)
    guard: UploadGuard | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.guard = create_upload_guard(self.guard_config, self.data)

    def generate(self, role: str, round: int | None = None) -> Generate:
        """An async ``generate(system, user)`` for this client's ``role`` model."""
        return self.gateway.bind(self.models.get(role, self.client_id), role=role, client_id=self.client_id, round=round)

    def score(self, round: int | None = None, judge: Generate | None = None) -> Scorer:
        """The task metric; a judge metric uses ``judge``, by default this client's judge model."""
        if self.scorer is not None:
            return self.scorer
        metric = self.task.metric
        return create_scorer(metric, (judge or self.generate("judge", round)) if metric == "judge" else None)

    def model_names(self) -> dict[str, str]:
        """Role -> the model this client uses."""
        return {role: self.models.name(role, self.client_id) for role in SITE_ROLES}

    async def accuracy(self, prompt: str, examples: list[Example], *, round: int | None = None) -> tuple[int, int]:
        """``(correct, total)`` of ``prompt`` on ``examples`` with this client's task model."""
        return await score_prompt(prompt, examples, answer=self.generate("task", round), score=self.score(round))

    async def train(self, request: TrainRequest) -> ClientUpdate:
        """Run the round's local TextGrad steps from the global prompt."""
        if self.client_graph is None:
            self.client_graph = build_client_graph(lambda _client_id: self)
        with call_context(run_id=request["run_id"]):
            return await run_client(self.client_graph, request, models=self.model_names())

    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        """Score a prompt on this client's own validation or test split (or the request's
        sample of it); only counts leave."""
        examples = self.data.validation if request["split"] == "validation" else self.data.test
        if "sample" in request:
            examples = sample_examples(examples, request["sample"]["size"], request["sample"]["seed"])
        # Count this request's calls itself: several requests may score on this site at once.
        replies: ReplyCounts = {}

        def counted(role: str) -> Generate:
            generate = self.generate(role, request["round"])

            async def call(system: str, user: str) -> str:
                reply = await generate(system, user)
                n = replies.setdefault(role, ReplyCount(calls=0, empty=0))
                n["calls"] += 1
                n["empty"] += is_empty_reply(reply)
                return reply

            return call

        score = self.score(request["round"], judge=counted("judge"))
        with metering(client_id=self.client_id) as tokens, call_context(run_id=request["run_id"]):
            correct, total = await score_prompt(request["prompt"], examples, answer=counted("task"), score=score)
        llm_calls = sum(n["calls"] for n in replies.values())
        return EvaluateResult(
            client_id=self.client_id,
            correct=correct,
            total=total,
            llm_calls=llm_calls,
            empty_replies=replies,
            llm_tokens=tokens.count(),
            llm_usage=tokens.role_usage(),
            models=self.model_names(),
        )
