"""The client-optimizer subgraph: K local TextGrad steps on a client's private data.

Each step: sample a minibatch -> forward (the task model answers, concurrently over the batch)
-> loss (the task metric, as a textgrad string function) -> backward (textual gradients,
concurrently over the batch) -> TGD step -> proximal check (re-score the same batch and keep
the new prompt only if the score did not drop). TextGrad objects live inside one node call;
the checkpointed state holds prompts, example indices and metrics only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from ._textgrad import create_engine, import_textgrad
from .data import Example
from .prompts import FORMAT_CONSTRAINT, METRIC_PURPOSES, QUERY_ROLE, SYSTEM_PROMPT_ROLE, TARGET_ROLE
from .runtime import FederationRuntime
from .state import ClientState, ClientTask, ClientUpdate, StepOutcome, StepRecord

__all__ = ["build_client_graph", "minibatch_indices", "proximal_accepts", "run_client"]

logger = logging.getLogger(__name__)
_IMPROVED = re.compile(r"<IMPROVED_VARIABLE>(.*?)</IMPROVED_VARIABLE>", re.DOTALL)


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


class _ClientStep:
    """One local step of one client: the TextGrad graph for a minibatch, built and used once."""

    def __init__(self, runtime: FederationRuntime, client_id: str, round: int) -> None:
        self.tg = import_textgrad()
        self.runtime = runtime
        self.client_id = client_id
        self.round = round
        self.task = runtime.data.clients[client_id].task
        self.score = runtime.scorer(self.task, client_id, round)
        self.metric_purpose = METRIC_PURPOSES[runtime.config.tasks[self.task].metric]
        self.task_engine = self._engine("task")
        self.optimizer_engine = self._engine("optimizer")
        self.optimizer_replies: list[str] = []
        self.step_engine = self._engine("optimizer", record=self.optimizer_replies)

    def _engine(self, role: str, record: list[str] | None = None) -> Any:
        generate = self.runtime.generate(role, self.client_id, self.round)

        def call(system: str, user: str) -> str:
            reply = self.runtime.wait_on_loop(generate(system, user))
            if record is not None:
                record.append(reply)
            return reply

        return create_engine(call, self.runtime.models.name(role, self.client_id))

    def forward_loss(self, system_prompt: Any, example: Example) -> Any:
        """Forward one example through the task model and score it; returns the loss variable."""
        tg = self.tg
        query = tg.Variable(example.input, requires_grad=False, role_description=QUERY_ROLE)
        target = tg.Variable(example.target, requires_grad=False, role_description=TARGET_ROLE)
        response = tg.BlackboxLLM(self.task_engine, system_prompt)(query)

        def metric(prediction: Any, ground_truth_answer: Any) -> int:
            return int(self.runtime.wait_on_loop(self.score(example.input, prediction.value, ground_truth_answer.value)))

        loss_fn = tg.autograd.StringBasedFunction(metric, function_purpose=self.metric_purpose)
        return loss_fn(inputs={"prediction": response, "ground_truth_answer": target})

    async def run(self, prompt: str, batch: list[Example]) -> tuple[str, float, float | None, StepOutcome]:
        """Returns the prompt to keep, batch accuracy before and after, and the outcome."""
        tg, runtime = self.tg, self.runtime
        system_prompt = tg.Variable(prompt, requires_grad=True, role_description=SYSTEM_PROMPT_ROLE)
        losses = await asyncio.gather(*(runtime.in_thread(self.forward_loss, system_prompt, ex) for ex in batch))
        before = sum(int(loss.value) for loss in losses) / len(losses)
        await asyncio.gather(*(runtime.in_thread(loss.backward, self.optimizer_engine) for loss in losses))
        fmt = runtime.config.prompt.format_instruction.strip()
        optimizer = tg.TextualGradientDescent(
            parameters=[system_prompt],
            engine=self.step_engine,
            constraints=[FORMAT_CONSTRAINT.format(format_instruction=fmt)] if fmt else [],
        )
        try:
            await runtime.in_thread(optimizer.step)
        except IndexError:
            if self.optimizer_replies and _IMPROVED.search(self.optimizer_replies[-1]):
                raise  # not textgrad's tag parsing: a real error
        reply = self.optimizer_replies[-1] if self.optimizer_replies else ""
        match = _IMPROVED.search(reply)
        new_prompt = match.group(1).strip() if match else ""
        if not new_prompt:
            logger.info("client %s round %d: malformed optimizer reply", self.client_id, self.round)
            return prompt, before, None, "malformed"
        rule = runtime.config.client.proximal
        if rule == "off" or new_prompt == prompt:
            return new_prompt, before, None, "accepted"
        correct, total = await runtime.accuracy(new_prompt, batch, self.task, client_id=self.client_id, round=self.round)
        after = correct / total
        if proximal_accepts(rule, before, after):
            return new_prompt, before, after, "accepted"
        return prompt, before, after, "rejected"


def build_client_graph(runtime: FederationRuntime) -> CompiledStateGraph:
    """Compile the client-optimizer subgraph (it inherits the parent's checkpointer)."""
    cfg = runtime.config

    def sample_minibatch(state: ClientState) -> dict[str, Any]:
        n = len(runtime.data.clients[state["client_id"]].train)
        batch = minibatch_indices(cfg.run.seed, state["client_id"], state["round"], state["step"], cfg.client.batch_size, n)
        return {"batch": batch}

    async def textgrad_step(state: ClientState) -> dict[str, Any]:
        client_id, round = state["client_id"], state["round"]
        train = runtime.data.clients[client_id].train
        calls_before = runtime.gateway.count(client_id=client_id)
        step = _ClientStep(runtime, client_id, round)
        prompt, before, after, outcome = await step.run(state["prompt"], [train[i] for i in state["batch"]])
        record = StepRecord(
            client_id=client_id,
            round=round,
            step=state["step"] + 1,
            batch_size=len(state["batch"]),
            train_accuracy=before,
            updated_accuracy=after,
            outcome=outcome,
            prompt_chars=len(prompt),
            llm_calls=runtime.gateway.count(client_id=client_id) - calls_before,
        )
        return {"prompt": prompt, "step": state["step"] + 1, "steps": [record]}

    def more_steps(state: ClientState) -> str:
        return "sample_minibatch" if state["step"] < cfg.client.local_steps else END

    graph = StateGraph(ClientState)
    graph.add_node("sample_minibatch", sample_minibatch)
    graph.add_node("textgrad_step", textgrad_step)
    graph.add_edge(START, "sample_minibatch")
    graph.add_edge("sample_minibatch", "textgrad_step")
    graph.add_conditional_edges("textgrad_step", more_steps, ["sample_minibatch", END])
    return graph.compile(name="client_optimizer")


async def run_client(client_graph: CompiledStateGraph, task: ClientTask, *, task_name: str, local_steps: int) -> ClientUpdate:
    """Run a client's local steps from the broadcast prompt and package its upload."""
    state = ClientState(client_id=task["client_id"], round=task["round"], prompt=task["global_prompt"], step=0, batch=[], steps=[])
    # Two supersteps per local step; the subgraph must not inherit the round graph's limit.
    final = await client_graph.ainvoke(state, {"recursion_limit": 2 * local_steps + 5})
    steps: list[StepRecord] = final["steps"]
    return ClientUpdate(
        client_id=task["client_id"],
        round=task["round"],
        task=task_name,
        prompt=final["prompt"],
        steps=steps,
        accepted=sum(s["outcome"] == "accepted" for s in steps),
        rejected=sum(s["outcome"] == "rejected" for s in steps),
        malformed=sum(s["outcome"] == "malformed" for s in steps),
        llm_calls=sum(s["llm_calls"] for s in steps),
    )
