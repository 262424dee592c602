"""The federated round as a LangGraph state graph.

    START -> start -> broadcast --Send(per selected client)--> client_optimizer -> collect
                                [--Send(round 1)--> baseline -> collect]
          -> screen -> aggregate [-> repair (loops while targets are missed)] -> evaluate -> review
          -> check_convergence --(continue)--> broadcast
                               --(stop)------> final_test -> END

``baseline`` scores the initial prompt in the same step as the first round's clients train (it
is needed only from ``evaluate`` on), so its calls overlap theirs.

``client_optimizer`` reaches each client through the runtime's transport (in-process, or a
Flower site). ``collect`` applies the quorum: with too few updates the round pauses (a
LangGraph interrupt); resuming it asks the missing clients again. ``screen`` leaves out
uploads that are oversized or score far below the rest (see :mod:`.screening`); ``aggregate``
merges the others once and measures the merge (coverage, surprisal, UID score, length ratio), and
keeps the global prompt when every upload was left out. When a ``uid`` merge misses its
``[aggregation]`` targets, ``repair`` asks again, one try per step (a resume never repeats a
finished try), then keeps the best candidate or falls back to the deduplicated concatenation
(:mod:`..aggregation.repair`). With
``[review] required``, ``review`` pauses every round for a person's decision on the merged
prompt (server/review.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, TypeAlias, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send, interrupt

from ..aggregation.repair import MergeProgress, MergeTargets, finish_merge, needs_repair, repair_once, start_merge, targets_of
from ..config import ROLES, FedTextGradConfig
from ..costs import budget_crossed, budget_line, usage_cost
from ..models.usage import add_tokens, add_usage, metering, tokens_or_unknown, usage_or_unknown
from ..replies import SERVER, ReplyCounts, add_replies, empty_reply_warnings, only_empty, replies_since
from ..site import SITE_ROLES
from ..state import RoundRecord, RoundState
from ..text import compose_prompt, count_tokens
from ..wire import ClientTask, ClientUpdate, TrainRequest
from .comparison import compare_to_global
from .convergence import decide
from .evaluation import test_accuracy, validation_accuracy
from .participation import QuorumPause, failure_reason
from .review import review_round
from .runtime import FederationRuntime
from .screening import Comparison, ScreenContext, create_screens, screen_uploads

__all__ = ["RoundGraph", "build_round_graph", "initial_state", "round_models", "select_clients", "train_request"]

RoundGraph: TypeAlias = "CompiledStateGraph[RoundState, None, RoundState, RoundState]"
"""The compiled round graph."""

logger = logging.getLogger(__name__)


def select_clients(client_ids: list[str], sampling_rate: float, seed: int, round: int) -> list[str]:
    """The clients of one round: ``max(1, round(C * N))`` of them, drawn reproducibly."""
    m = max(1, int(sampling_rate * len(client_ids) + 0.5))
    chosen = set(random.Random(f"{seed}:select:{round}").sample(client_ids, m))
    return [cid for cid in client_ids if cid in chosen]


def initial_state(config: FedTextGradConfig) -> RoundState:
    """The graph input that starts a run. The config is saved with the checkpoint."""
    return RoundState(
        run_config=config.model_dump(mode="json"),
        round=0,
        global_prompt=compose_prompt(config.prompt.instruction, config.prompt.format_instruction),
        selected_clients=[],
        client_updates=None,  # type: ignore[typeddict-item]  # None clears the keyed map
        client_failures=None,  # type: ignore[typeddict-item]
        round_metrics=None,  # type: ignore[typeddict-item]
        history=[],
        best_prompt=None,
        best_score=None,
        best_round=None,
        reference_score=None,
        baseline_accuracy=None,
        rounds_without_improvement=0,
        rounds_unchanged=0,
        stop_reason=None,
        test_accuracy=None,
        client_test=None,
        baseline_by_task=None,
        test_by_task=None,
        baseline_llm_tokens=None,
        test_llm_tokens=None,
        baseline_llm_calls=None,
        test_llm_calls=None,
        baseline_llm_usage=None,
        test_llm_usage=None,
        spent_tokens=0,
        spent_usd=0.0,
        baseline_cost_usd=None,
        test_cost_usd=None,
    )


def round_models(server: dict[str, str], clients: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Role -> model of a round (or a scoring phase): the server's roles, each site role the
    clients (client -> role -> model, as they reported) agree on, and ``<client>.<role>``
    wherever a client used another model."""
    names = dict(server)
    for role in SITE_ROLES:
        used = {models[role] for models in clients.values() if role in models}
        if role not in names and len(used) == 1:
            names[role] = used.pop()
    for cid, models in clients.items():
        for role, name in models.items():
            if names.get(role) != name:
                names[f"{cid}.{role}"] = name
    order = {role: i for i, role in enumerate(ROLES)}
    return dict(sorted(names.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def train_request(config: FedTextGradConfig, task: ClientTask, *, run_id: str) -> TrainRequest:
    """What a client is sent for a round: the task, and the run's local-training settings."""
    return TrainRequest(
        run_id=run_id,
        client_id=task["client_id"],
        round=task["round"],
        global_prompt=task["global_prompt"],
        task=config.client_task(task["client_id"]),
        seed=config.run.seed,
        local_steps=config.client.local_steps,
        batch_size=config.client.batch_size,
        proximal=config.client.proximal,
        format_instruction=config.prompt.format_instruction,
    )


def round_empty_replies(
    updates: Mapping[str, ClientUpdate], *server_steps: Mapping[str, ReplyCounts]
) -> dict[str, ReplyCounts]:
    """A round's empty replies by caller (client id, or ``"server"``) and role: the clients'
    local training and every later step's calls; only callers and roles that got one."""
    by_caller: dict[str, ReplyCounts] = {cid: dict(u.get("empty_replies", {})) for cid, u in updates.items()}
    for step in server_steps:
        for who, counts in step.items():
            by_caller[who] = add_replies(by_caller.get(who, {}), counts)
    return only_empty(by_caller)


class _StepNode(Protocol):
    def __call__(self, state: RoundState, config: RunnableConfig) -> Awaitable[dict[str, Any]]: ...


_STEP_TOKENS = "_llm_tokens"  # the suffix of each server step's tokens in the round's metrics
_STEP_USAGE = "_llm_usage"  # ... and of its calls and tokens by caller and role


def _metered(step: str, node: _StepNode) -> _StepNode:
    """``node`` recording the tokens of the server's calls it makes (and those the clients
    report for scoring it asks of them) as ``<step>_llm_tokens`` in the round's metrics, added
    to what the step already spent this round (``repair`` runs once per try)."""
    key, usage_key = f"{step}{_STEP_TOKENS}", f"{step}{_STEP_USAGE}"

    async def run(state: RoundState, config: RunnableConfig) -> dict[str, Any]:
        with metering(client_id=None) as tokens:
            out = await node(state, config)
        metrics = state.get("round_metrics") or {}
        spent = add_tokens(metrics.get(key), tokens.count())
        usage = add_usage(metrics.get(usage_key), tokens.usage())
        return {**out, "round_metrics": {**out.get("round_metrics", {}), key: spent, usage_key: usage}}

    return run


def _update_success_rate(updates: Mapping[str, ClientUpdate]) -> float | None:
    """Accepted / attempted local steps of these uploads (``None`` when none was attempted)."""
    attempted = sum(len(u["steps"]) for u in updates.values())
    return sum(u["accepted"] for u in updates.values()) / attempted if attempted else None


def _add_cost(spent: float | None, cost: float | None) -> float | None:
    """A running cost: unknown from the first unpriced part on."""
    return None if spent is None or cost is None else spent + cost


def _run_id(config: RunnableConfig) -> str:
    return str(config.get("configurable", {}).get("thread_id", ""))


def build_round_graph(
    runtime: FederationRuntime, *, checkpointer: BaseCheckpointSaver[str] | None = None
) -> RoundGraph:
    """Compile the round graph over ``runtime``'s models, evaluation data and transport.

    Args:
        runtime: The server side of the run (see :class:`FederationRuntime`).
        checkpointer: Where the graph saves its progress; an in-process client subgraph
            shares it, so an interrupted client resumes from its last finished local step.
    """
    cfg = runtime.config
    fed = cfg.federation
    transport = runtime.transport
    screens = create_screens(cfg.screening)

    def start(state: RoundState) -> dict[str, Any]:
        """An empty input (LangGraph Studio's default) starts from :func:`initial_state`."""
        return {} if state.get("global_prompt") else dict(initial_state(cfg))

    async def baseline(state: RoundState, config: RunnableConfig) -> Command[Any]:
        """Score the initial prompt: the first reference for improvement and the first best.
        Sent with the first round's client tasks (nothing there waits for it), so its calls
        overlap their local training; ``collect`` follows.

        In round 0 it was not sent: a checkpoint of a version that scored the baseline before
        the first round (START -> baseline -> broadcast) was resumed with its baseline
        unfinished, and ``broadcast`` follows, as it did then.
        """
        prompt = state["global_prompt"]
        with metering(client_id=None) as tokens:
            score = await validation_accuracy(runtime, prompt, run_id=_run_id(config), round=0)
        usage = tokens.usage()
        count = tokens.count()
        cost = usage_cost(usage, round_models(runtime.models.names(["task", "judge"]), score.client_models), cfg.pricing)
        update = {
            "baseline_accuracy": score.accuracy,
            "baseline_by_task": score.by_task,
            "baseline_llm_tokens": count,
            "baseline_llm_usage": usage,
            "spent_tokens": count["input"] + count["output"],
            "baseline_cost_usd": cost,
            "spent_usd": cost,
            "baseline_llm_calls": score.llm_calls,
            "best_prompt": prompt,
            "best_score": score.accuracy,
            "best_round": 0,
            "reference_score": score.accuracy,
        }
        return Command(update=update, goto="collect" if state["round"] else "broadcast")

    def broadcast(state: RoundState) -> dict[str, Any]:
        round = state["round"] + 1
        selected = select_clients(fed.client_ids(), fed.sampling_rate, cfg.run.seed, round)
        return {
            "round": round,
            "selected_clients": selected,
            "client_updates": None,
            "client_failures": None,
            "round_metrics": None,
        }

    def tasks_for(state: RoundState, client_ids: list[str]) -> list[Send]:
        return [
            Send("client_optimizer", ClientTask(client_id=cid, round=state["round"], global_prompt=state["global_prompt"]))
            for cid in client_ids
        ]

    def fan_out(state: RoundState) -> list[Send]:
        sends = tasks_for(state, state["selected_clients"])
        if cfg.evaluation.baseline and state["round"] == 1 and state.get("best_round") is None:  # not scored yet
            sends.append(Send("baseline", state))
        return sends

    async def client_optimizer(state: ClientTask, config: RunnableConfig) -> dict[str, Any]:
        client_id = state["client_id"]
        request = train_request(cfg, state, run_id=_run_id(config))
        try:
            update = await asyncio.wait_for(transport.train(request), fed.client_deadline_s)
        except Exception as exc:  # any failure drops this client for the round, under the quorum
            reason = failure_reason(exc, fed.client_deadline_s)
            logger.info("client %s dropped from round %d: %s", client_id, state["round"], reason, exc_info=exc)
            return {"client_failures": {client_id: reason}}
        return {"client_updates": {client_id: update}}

    def missing(state: RoundState) -> list[str]:
        updates = state.get("client_updates") or {}
        return [cid for cid in state["selected_clients"] if cid not in updates]

    def quorum_met(state: RoundState) -> bool:
        selected = state["selected_clients"]
        return len(selected) - len(missing(state)) >= fed.required_updates(len(selected))

    def collect(state: RoundState) -> dict[str, Any]:
        """Check the quorum; below it, pause the run until it is resumed (then retry)."""
        if not quorum_met(state):
            failures = state.get("client_failures") or {}
            interrupt(
                QuorumPause(
                    kind="quorum",
                    round=state["round"],
                    arrived=[cid for cid in state["selected_clients"] if cid not in missing(state)],
                    required=fed.required_updates(len(state["selected_clients"])),
                    dropped={cid: failures.get(cid, "no reply") for cid in missing(state)},
                )
            )
        return {}

    def after_collect(state: RoundState) -> str | list[Send]:
        return "screen" if quorum_met(state) else tasks_for(state, missing(state))

    def uploads(state: RoundState) -> dict[str, str]:
        updates = state["client_updates"]
        return {cid: updates[cid]["prompt"] for cid in state["selected_clients"] if cid in updates}

    async def screen(state: RoundState, config: RunnableConfig) -> dict[str, Any]:
        """Leave out the uploads the configured screens do not trust, with the reason."""
        global_prompt = state["global_prompt"]
        replies: list[ReplyCounts] = []  # the server's calls, scored now or read back from the checkpoint

        async def compare(prompts: Mapping[str, str]) -> Comparison:
            comparison = await compare_to_global(
                runtime, prompts, global_prompt=global_prompt, run_id=_run_id(config), round=state["round"]
            )
            replies.append(comparison.replies)
            return comparison

        result = await screen_uploads(screens, uploads(state), ScreenContext(state["round"], global_prompt, compare))
        for cid, reason in result.left_out.items():
            logger.info("client %s screened out of round %d: %s", cid, state["round"], reason)
        return {
            "round_metrics": {
                "screened_out": result.left_out,
                "screen_scores": result.scores,
                "screen_llm_calls": result.llm_calls,
                "screen_replies": {SERVER: add_replies(*replies)},
            }
        }

    agg_cfg = cfg.aggregation

    def merge_targets(progress: MergeProgress) -> MergeTargets:
        return targets_of(progress, min_coverage=agg_cfg.min_coverage, max_length_ratio=agg_cfg.max_length_ratio)

    def merged(progress: MergeProgress) -> dict[str, Any]:
        """The global prompt and the round's ``merge`` record, once no repair is left to try."""
        body, record = finish_merge(progress, merge_targets(progress))
        prompt = compose_prompt(body, cfg.prompt.format_instruction)
        return {
            "global_prompt": prompt,
            "round_metrics": {
                "merge_progress": None,
                "merge": record,
                "prompt_chars": len(prompt),
                "prompt_tokens": count_tokens(prompt, agg_cfg.tokenizer),
            },
        }

    async def aggregate(state: RoundState) -> dict[str, Any]:
        """Merge the kept uploads once (candidate 0) and measure it; ``repair`` takes it from there."""
        calls = runtime.gateway.count()
        replies = runtime.gateway.replies(client_id=None)
        screened_out = state["round_metrics"].get("screened_out", {})
        prompts = {cid: prompt for cid, prompt in uploads(state).items() if cid not in screened_out}
        progress: MergeProgress | None = None
        if prompts:
            aggregator = runtime.aggregator(state["round"])
            progress = await start_merge(
                aggregator,
                runtime.merge_meter(state["round"]),
                prompts,
                format_instruction=cfg.prompt.format_instruction,
                enforce=aggregator.enforces_targets,
            )
        else:
            logger.warning("every upload of round %d was screened out; the global prompt stays as it was", state["round"])
        metrics = {
            "prompt_chars": len(state["global_prompt"]),
            "prompt_tokens": count_tokens(state["global_prompt"], agg_cfg.tokenizer),
            "tokenizer": agg_cfg.tokenizer,
            "aggregation": agg_cfg.strategy,
            "aggregation_llm_calls": runtime.gateway.count() - calls,
            "aggregation_replies": {SERVER: replies_since(replies, runtime.gateway.replies(client_id=None))},
            "previous_prompt": state["global_prompt"],
            "all_screened_out": not prompts,
            "aggregation_models": runtime.models_in_use(["aggregator"]),
            "merge_progress": progress,
        }
        if progress is None or needs_repair(progress, merge_targets(progress), agg_cfg.repair_tries):
            return {"round_metrics": metrics}
        done = merged(progress)
        return {"global_prompt": done["global_prompt"], "round_metrics": metrics | done["round_metrics"]}

    def after_merge(state: RoundState) -> str:
        return "repair" if state["round_metrics"].get("merge_progress") else "evaluate"

    async def repair(state: RoundState) -> dict[str, Any]:
        """One repair try of a merge that missed its targets (each try is its own step)."""
        metrics = state["round_metrics"]
        calls = runtime.gateway.count()
        replies = runtime.gateway.replies(client_id=None)
        progress = metrics["merge_progress"]
        progress = await repair_once(runtime.aggregator(state["round"]), runtime.merge_meter(state["round"]), progress, merge_targets(progress))
        spent = {
            "aggregation_llm_calls": metrics["aggregation_llm_calls"] + runtime.gateway.count() - calls,
            "aggregation_replies": {
                SERVER: add_replies(metrics["aggregation_replies"].get(SERVER, {}), replies_since(replies, runtime.gateway.replies(client_id=None)))
            },
        }
        if needs_repair(progress, merge_targets(progress), agg_cfg.repair_tries):
            return {"round_metrics": spent | {"merge_progress": progress}}
        done = merged(progress)
        return {"global_prompt": done["global_prompt"], "round_metrics": spent | done["round_metrics"]}

    async def evaluate(state: RoundState, config: RunnableConfig) -> dict[str, Any]:
        score = await validation_accuracy(runtime, state["global_prompt"], run_id=_run_id(config), round=state["round"])
        return {
            "round_metrics": {
                "validation_accuracy": score.accuracy,
                "validation_correct": score.correct,
                "validation_total": score.total,
                "evaluation_dropped": score.dropped,
                "evaluation_llm_calls": score.llm_calls,
                "client_validation": score.by_client,
                "validation_by_task": score.by_task,
                "evaluation_replies": score.replies,
                "evaluation_models": runtime.models_in_use(["task", "judge"]),
                "evaluation_client_models": score.client_models,
            }
        }

    async def review(state: RoundState, config: RunnableConfig) -> dict[str, Any]:
        """With ``[review] required``, pause for a person to approve, edit or reject the merge."""
        if not cfg.review.required:
            return {}
        return await review_round(runtime, state, run_id=_run_id(config))

    def check_convergence(state: RoundState) -> dict[str, Any]:
        metrics = dict(state["round_metrics"])
        previous_prompt = metrics.pop("previous_prompt")
        metrics.pop("merge_progress", None)
        server_replies = [metrics.pop(k, {}) for k in ("screen_replies", "aggregation_replies", "evaluation_replies", "review_replies")]
        server_tokens = [metrics.pop(k) for k in list(metrics) if k.endswith(_STEP_TOKENS)]
        server_usage = [metrics.pop(k) for k in list(metrics) if k.endswith(_STEP_USAGE)]
        # The server models of the process that ran each step (a resume may use others);
        # rounds checkpointed before these were recorded take this process's.
        server_models = runtime.models.names(runtime.roles_in_use())
        server_models |= metrics.pop("aggregation_models", {}) | metrics.pop("evaluation_models", {})
        scored_with: dict[str, dict[str, str]] = metrics.pop("evaluation_client_models", {})
        updates = state["client_updates"]
        failures = state.get("client_failures") or {}
        accuracy = metrics["validation_accuracy"]
        verdict = decide(
            cfg.convergence,
            round=state["round"],
            accuracy=accuracy,
            best_score=state["best_score"],
            reference_score=state["reference_score"],
            rounds_without_improvement=state["rounds_without_improvement"],
            rounds_unchanged=state["rounds_unchanged"],
            prompt=state["global_prompt"],
            previous_prompt=previous_prompt,
            eligible=metrics.get("review", {}).get("decision") != "reject",
        )
        arrived = [cid for cid in state["selected_clients"] if cid in updates]
        record = RoundRecord(
            round=state["round"],
            clients=list(state["selected_clients"]),
            client_prompts={cid: updates[cid]["prompt"] for cid in arrived},
            client_metrics={
                # blocked/redacted/unchanged: absent from updates of older sites and checkpoints
                cid: {"blocked": 0, "redacted": 0, "unchanged": 0}
                | {k: updates[cid][k] for k in ("task", "accepted", "rejected", "malformed", "llm_calls", "steps", "blocked", "redacted", "unchanged") if k in updates[cid]}
                for cid in arrived
            },
            dropped={cid: failures.get(cid, "no reply") for cid in missing(state)},
            global_prompt=state["global_prompt"],
            improved=verdict.improved,
            # A client that scored but did not train this round is priced with its own models too.
            models=round_models(server_models, scored_with | {cid: updates[cid].get("models", {}) for cid in arrived}),
            llm_calls=sum(updates[cid]["llm_calls"] for cid in arrived)
            + metrics.get("screen_llm_calls", 0)
            + metrics["aggregation_llm_calls"]
            + metrics["evaluation_llm_calls"],
            empty_replies=round_empty_replies({cid: updates[cid] for cid in arrived}, *server_replies),
            update_success_rate=_update_success_rate({cid: updates[cid] for cid in arrived}),
            llm_tokens=add_tokens(*(tokens_or_unknown(updates[cid]) for cid in arrived), *server_tokens),
            llm_usage=add_usage(*(usage_or_unknown(cid, updates[cid]) for cid in arrived), *server_usage),
        )
        record["cost_usd"] = usage_cost(record["llm_usage"], record["models"], cfg.pricing)
        record.update(cast(RoundRecord, metrics))  # the round's measures: prompt size, scores, screening, review
        spent_tokens = (state.get("spent_tokens") or 0) + record["llm_tokens"]["input"] + record["llm_tokens"]["output"]
        spent_usd = _add_cost(state.get("spent_usd", 0.0), record["cost_usd"])
        stop_reason = verdict.stop_reason
        if stop_reason is None and budget_crossed(cfg.budget, spent_tokens, spent_usd):
            stop_reason = "budget"
            logger.warning("round %d: budget reached (%s); the run stops here", state["round"], budget_line(cfg.budget, spent_tokens, spent_usd))
        for line in empty_reply_warnings(state["round"], record["empty_replies"]):
            logger.warning("%s", line)
        out: dict[str, Any] = {
            "history": [record],
            "rounds_without_improvement": verdict.rounds_without_improvement,
            "rounds_unchanged": verdict.rounds_unchanged,
            "stop_reason": stop_reason,
            "spent_tokens": spent_tokens,
            "spent_usd": spent_usd,
        }
        if verdict.improved:
            out["reference_score"] = accuracy
        if verdict.new_best:
            out.update(best_prompt=state["global_prompt"], best_score=accuracy, best_round=state["round"])
        return out

    def next_step(state: RoundState) -> str:
        if state["stop_reason"] is None:
            return "broadcast"
        if state["stop_reason"] == "budget":
            return END  # resumable with a raised budget: the final test waits for the last round
        return "final_test" if cfg.evaluation.test else END

    async def final_test(state: RoundState, config: RunnableConfig) -> dict[str, Any]:
        with metering(client_id=None) as tokens:
            score = await test_accuracy(runtime, state["best_prompt"] or state["global_prompt"], run_id=_run_id(config))
        return {
            "test_accuracy": score.accuracy,
            "client_test": score.by_client or None,
            "test_by_task": score.by_task,
            "test_llm_tokens": tokens.count(),
            "test_llm_usage": tokens.usage(),
            "test_cost_usd": usage_cost(tokens.usage(), round_models(runtime.models.names(["task", "judge"]), score.client_models), cfg.pricing),
            "test_llm_calls": score.llm_calls,
        }

    graph = StateGraph(RoundState)
    graph.add_node("start", start)
    graph.add_node("baseline", baseline, destinations=("collect",))  # and, from an older checkpoint, broadcast
    graph.add_node("broadcast", broadcast)
    graph.add_node("client_optimizer", client_optimizer, input_schema=ClientTask)
    graph.add_node("collect", collect)
    graph.add_node("screen", _metered("screen", screen))
    graph.add_node("aggregate", _metered("aggregate", lambda state, config: aggregate(state)))
    graph.add_node("repair", _metered("repair", lambda state, config: repair(state)))
    graph.add_node("evaluate", _metered("evaluate", evaluate))
    graph.add_node("review", _metered("review", review))
    graph.add_node("check_convergence", check_convergence)
    graph.add_node("final_test", final_test)
    graph.add_edge(START, "start")
    graph.add_edge("start", "broadcast")
    graph.add_conditional_edges("broadcast", fan_out, ["client_optimizer", "baseline"])
    graph.add_edge("client_optimizer", "collect")
    graph.add_conditional_edges("collect", after_collect, ["screen", "client_optimizer"])
    graph.add_edge("screen", "aggregate")
    graph.add_conditional_edges("aggregate", after_merge, ["repair", "evaluate"])
    graph.add_conditional_edges("repair", after_merge, ["repair", "evaluate"])
    graph.add_edge("evaluate", "review")
    graph.add_edge("review", "check_convergence")
    graph.add_conditional_edges("check_convergence", next_step, ["broadcast", "final_test", END])
    graph.add_edge("final_test", END)
    compiled = graph.compile(checkpointer=checkpointer, name="fedtextgrad_round")
    if transport.client_graph is not None:
        # Declare the in-process client subgraph as this node's subgraph (LangGraph only finds
        # subgraphs it can see in a node's code): drawn by get_graph(xray=True), its state
        # shown by get_state(subgraphs=True).
        compiled.nodes["client_optimizer"].subgraphs = [transport.client_graph]
    return compiled
