"""The client-optimizer subgraph: K local TextGrad steps on a client's private data.

Each step: sample a minibatch -> forward (the task model answers, concurrently over the batch)
-> loss (the task metric, as a textgrad string function) -> backward (textual gradients,
concurrently over the batch) -> TGD step -> proximal check (re-score the same batch and keep
the new prompt only if the score did not drop). A new prompt that equals the old one but for
whitespace is ``unchanged``: kept as it was, not re-scored, not counted as accepted. TextGrad objects live inside one node call;
the checkpointed state holds prompts, example indices and metrics only.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ..data import Example
from ..models.call_context import call_context
from ..models.usage import add_tokens, add_usage, metering
from ..prompts import FORMAT_CONSTRAINT, METRIC_PURPOSES, QUERY_ROLE, SYSTEM_PROMPT_ROLE, TARGET_ROLE
from ..replies import add_replies
from ..wire import ClientUpdate, StepOutcome, StepRecord, TrainRequest
from ._textgrad import create_engine, import_textgrad, order_gradients

if TYPE_CHECKING:
    from .context import Site

__all__ = ["ClientGraph", "ClientState", "build_client_graph", "minibatch_indices", "proximal_accepts", "run_client", "same_prompt"]

logger = logging.getLogger(__name__)
_IMPROVED = re.compile(r"<IMPROVED_VARIABLE>(.*?)</IMPROVED_VARIABLE>", re.DOTALL)


class ClientState(TypedDict):
    """State of the client-optimizer subgraph. ``batch`` holds example indices, not examples."""

    request: TrainRequest
    prompt: str
    step: int
    batch: list[int]
    steps: Annotated[list[StepRecord], operator.add]


ClientGraph: TypeAlias = "CompiledStateGraph[ClientState, None, ClientState, ClientState]"
"""The compiled client-optimizer subgraph."""


def minibatch_indices(seed: int, client_id: str, round: int, step: int, size: int, n: int) -> list[int]:
    """A reproducible minibatch: the same run, client, round and step always draw the same indices."""
    return sorted(random.Random(f"{seed}:{client_id}:{round}:{step}").sample(range(n), min(size, n)))


def proximal_accepts(rule: str, before: float, after: float) -> bool:
    """Whether the updated prompt is kept, given batch accuracy before and after the update.

    ``non_decreasing`` keeps it unless accuracy dropped; ``strict`` (the paper's
    ``--proximal_update``) keeps it only if accuracy rose or is perfect; ``off`` always keeps it.
    """
    if rule == "off":
        return True
    if rule == "strict":
        return after > before or after == 1.0
    return after >= before


def same_prompt(old: str, new: str) -> bool:
    """Whether ``new`` says what ``old`` says: equal once runs of whitespace are made one space."""
    return old.split() == new.split()


class _ClientStep:
    """One local step of one client: the TextGrad graph for a minibatch, built and used once."""

    def __init__(self, site: Site, request: TrainRequest) -> None:
        self.tg = import_textgrad()
        self.site = site
        self.request = request
        self.round = request["round"]
        self.score = site.score(self.round)
        self.metric_purpose = METRIC_PURPOSES[site.task.metric]
        self.task_engine = self._engine("task", "answer")
        self.optimizer_engine = self._engine("optimizer", "gradient")
        self.optimizer_replies: list[str] = []
        self.step_engine = self._engine("optimizer", "update", record=self.optimizer_replies)
        self.guard_caught: dict[str, int] = {}  # what the upload guard caught in this step's prompt
        self.redacted = False

    def _engine(self, role: str, purpose: str, record: list[str] | None = None) -> Any:
        """A TextGrad engine over this client's ``role`` model; its calls are traced with
        ``purpose`` (``answer``, ``gradient``: a textual gradient, ``update``: the TGD rewrite)."""
        generate = self.site.generate(role, self.round)
        wait_on_loop = self.site.bridge.wait_on_loop

        def call(system: str, user: str) -> str:
            with call_context(purpose=purpose):
                reply = wait_on_loop(generate(system, user))
            if record is not None:
                record.append(reply)
            return reply

        return create_engine(call, self.site.models.name(role, self.site.client_id))

    def forward_loss(self, system_prompt: Any, example: Example) -> Any:
        """Forward one example through the task model and score it; returns the loss variable."""
        tg = self.tg
        query = tg.Variable(example.input, requires_grad=False, role_description=QUERY_ROLE)
        target = tg.Variable(example.target, requires_grad=False, role_description=TARGET_ROLE)
        response = tg.BlackboxLLM(self.task_engine, system_prompt)(query)
        wait_on_loop = self.site.bridge.wait_on_loop

        def metric(prediction: Any, ground_truth_answer: Any) -> int:
            return int(wait_on_loop(self.score(example.input, prediction.value, ground_truth_answer.value)))

        loss_fn = tg.autograd.StringBasedFunction(metric, function_purpose=self.metric_purpose)
        return loss_fn(inputs={"prediction": response, "ground_truth_answer": target})

    async def run(self, prompt: str, batch: list[Example]) -> tuple[str, float, float | None, StepOutcome]:
        """Returns the prompt to keep, batch accuracy before and after, and the outcome."""
        tg, site, in_thread = self.tg, self.site, self.site.bridge.in_thread
        system_prompt = tg.Variable(prompt, requires_grad=True, role_description=SYSTEM_PROMPT_ROLE)
        losses = await asyncio.gather(*(in_thread(self.forward_loss, system_prompt, ex) for ex in batch))
        before = sum(int(loss.value) for loss in losses) / len(losses)
        await asyncio.gather(*(in_thread(loss.backward, self.optimizer_engine) for loss in losses))
        fmt = self.request["format_instruction"].strip()
        optimizer = tg.TextualGradientDescent(
            parameters=[system_prompt],
            engine=self.step_engine,
            constraints=[FORMAT_CONSTRAINT.format(format_instruction=fmt)] if fmt else [],
        )
        order_gradients(system_prompt)
        try:
            await in_thread(optimizer.step)
        except IndexError:
            if self.optimizer_replies and _IMPROVED.search(self.optimizer_replies[-1]):
                raise  # not textgrad's tag parsing: a real error
        reply = self.optimizer_replies[-1] if self.optimizer_replies else ""
        match = _IMPROVED.search(reply)
        new_prompt = match.group(1).strip() if match else ""
        if not new_prompt:
            logger.info("client %s round %d: malformed optimizer reply", site.client_id, self.round)
            return prompt, before, None, "malformed"
        guarded = self.guard(new_prompt)
        if guarded is None:
            return prompt, before, None, "blocked"
        if same_prompt(prompt, guarded):
            return prompt, before, None, "unchanged"
        new_prompt = guarded
        rule = self.request["proximal"]
        if rule == "off":
            return new_prompt, before, None, "accepted"
        correct, total = await site.accuracy(new_prompt, batch, round=self.round)
        after = correct / total
        if proximal_accepts(rule, before, after):
            return new_prompt, before, after, "accepted"
        return prompt, before, after, "rejected"

    def guard(self, new_prompt: str) -> str | None:
        """``new_prompt`` as the site's upload guard lets it be kept (redacted), or ``None``:
        blocked. Text the server sent (the global prompt) is not the site's to protect."""
        if self.site.guard is None:
            return new_prompt
        sent = f"{self.request['global_prompt']}\n{self.request['format_instruction']}"
        verdict = self.site.guard.inspect(new_prompt, allowed=sent)
        self.guard_caught, self.redacted = verdict.caught, verdict.redacted
        if verdict.caught:
            # Counts only: the caught text must not reach any log.
            logger.info("client %s round %d: upload guard caught %s", self.site.client_id, self.round, verdict.caught)
        return verdict.prompt


def build_client_graph(site_of: Callable[[str], Site]) -> ClientGraph:
    """Compile the client-optimizer subgraph; ``site_of(client_id)`` gives a client's site.

    Run inside the round graph it inherits the round graph's checkpointer, so an interrupted
    client resumes from its last finished local step.
    """

    def sample_minibatch(state: ClientState) -> dict[str, Any]:
        request = state["request"]
        n = len(site_of(request["client_id"]).data.train)
        batch = minibatch_indices(request["seed"], request["client_id"], request["round"], state["step"], request["batch_size"], n)
        return {"batch": batch}

    async def textgrad_step(state: ClientState) -> dict[str, Any]:
        request = state["request"]
        site = site_of(request["client_id"])
        train = site.data.train
        await asyncio.to_thread(import_textgrad)  # the prefetch's end, awaited off the event loop
        step = _ClientStep(site, request)
        with metering(client_id=site.client_id) as tokens, call_context(local_step=state["step"] + 1):
            prompt, before, after, outcome = await step.run(state["prompt"], [train[i] for i in state["batch"]])
        # The step's own calls, from its meter: the same client may be scoring a prompt meanwhile.
        replies = tokens.replies()
        record = StepRecord(
            client_id=site.client_id,
            round=request["round"],
            step=state["step"] + 1,
            batch_size=len(state["batch"]),
            train_accuracy=before,
            updated_accuracy=after,
            outcome=outcome,
            prompt_chars=len(prompt),
            llm_calls=sum(n["calls"] for n in replies.values()),
            guard_caught=step.guard_caught,
            redacted=step.redacted,
            empty_replies=replies,
            llm_tokens=tokens.count(),
            llm_usage=tokens.role_usage(),
        )
        return {"prompt": prompt, "step": state["step"] + 1, "steps": [record]}

    def more_steps(state: ClientState) -> str:
        return "sample_minibatch" if state["step"] < state["request"]["local_steps"] else END

    graph = StateGraph(ClientState)
    graph.add_node("sample_minibatch", sample_minibatch)
    graph.add_node("textgrad_step", textgrad_step)
    graph.add_edge(START, "sample_minibatch")
    graph.add_edge("sample_minibatch", "textgrad_step")
    graph.add_conditional_edges("textgrad_step", more_steps, ["sample_minibatch", END])
    return graph.compile(name="client_optimizer")


async def run_client(client_graph: ClientGraph, request: TrainRequest, *, models: dict[str, str]) -> ClientUpdate:
    """Run a client's local steps from the broadcast prompt and package its upload."""
    state = ClientState(request=request, prompt=request["global_prompt"], step=0, batch=[], steps=[])
    # Two supersteps per local step; the subgraph must not inherit the round graph's limit.
    final = await client_graph.ainvoke(state, {"recursion_limit": 2 * request["local_steps"] + 5})
    steps: list[StepRecord] = final["steps"]
    return ClientUpdate(
        client_id=request["client_id"],
        round=request["round"],
        task=request["task"],
        prompt=final["prompt"],
        steps=steps,
        accepted=sum(s["outcome"] == "accepted" for s in steps),
        rejected=sum(s["outcome"] == "rejected" for s in steps),
        malformed=sum(s["outcome"] == "malformed" for s in steps),
        llm_calls=sum(s["llm_calls"] for s in steps),
        models=models,
        blocked=sum(s["outcome"] == "blocked" for s in steps),
        redacted=sum(s["redacted"] for s in steps),
        unchanged=sum(s["outcome"] == "unchanged" for s in steps),
        empty_replies=add_replies(*(s.get("empty_replies", {}) for s in steps)),
        llm_tokens=add_tokens(*(s.get("llm_tokens") for s in steps)),
        llm_usage=add_usage(*({request["client_id"]: s["llm_usage"]} for s in steps if "llm_usage" in s)).get(request["client_id"], {}),
    )
