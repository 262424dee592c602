"""Start, resume and inspect runs: stream the round graph and write the run directory.

A run directory holds ``results.json`` (per-round metrics and prompts), ``best_prompt.txt``,
``config.json`` (the run's config, without API keys) and ``events.jsonl`` (progress events
and the metadata of every LLM call, never their content). With the default checkpoint URL it
also holds ``checkpoint.sqlite``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias, cast

from langchain_core.callbacks import Callbacks
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from .checkpoint.delta import replay_delta_channels
from .checkpoint.lease import hold_run_lease
from .config import ConfigError, FedTextGradConfig
from .costs import budget_crossed, budget_line, unpriced_models
from .data import FederatedData
from .events import EventKind, RunEvent
from .gc_pacing import paced_collection
from .metrics import Scorer
from .model_usage import models_by_round, simulated_used, used_models
from .models import Answerer
from .models.usage import add_tokens, add_usage
from .progress import llm_call_event, run_listener
from .run_ids import check_run_id
from .server import FederationRuntime, build_round_graph, initial_state
from .server.participation import quorum_message
from .server.review import ReviewDecision, approved_prompt, parse_decision, review_message
from .state import merge_all
from .transport import ClientTransport
from .wire import TokenCount, Usage

INTERRUPT = "__interrupt__"  # the stream and pending-writes key of a LangGraph interrupt
RESUME = "__resume__"  # the pending-writes key of the answer to an interrupt

__all__ = [
    "BudgetSpent",
    "RunAwaitingReview",
    "RunEvent",
    "RunExistsError",
    "RunPaused",
    "awaiting_review",
    "latest_prompt",
    "new_run_id",
    "results_payload",
    "run_config",
    "run_cost",
    "run_federated",
    "run_status",
    "run_usage",
    "saved_state",
    "stream_run",
    "write_run_files",
]


def new_run_id(name: str) -> str:
    """``<name>-<UTC timestamp>-<random suffix>``."""
    # ASCII and short, so the id passes check_run_id whatever the run's name.
    slug = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_" else "-" for ch in name)[:80].strip("-") or "run"
    return f"{slug}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def run_config(run_id: str, config: FedTextGradConfig) -> RunnableConfig:
    """The LangGraph config of a run: its id is the thread id."""
    # Each round takes eight supersteps of the round graph, one more per repair try of its merge
    # and two more for each retry after a quorum pause; leave room for the baseline and the final test.
    per_round = 10 + config.aggregation.repair_tries
    return {"configurable": {"thread_id": run_id}, "recursion_limit": per_round * config.convergence.max_rounds + 20}


_SubgraphUpdate: TypeAlias = "tuple[tuple[str, ...], dict[str, Any]]"  # (namespace, {node: update})


async def saved_state(checkpointer: BaseCheckpointSaver[str], run_id: str) -> dict[str, Any] | None:
    """The round-graph state of a run's latest checkpoint, without building the graph.

    Includes the uploads (and failures) of clients that finished the round in progress: until
    every selected client has answered, the checkpoint holds them as pending writes, not as
    channel values. A run paused below its quorum, or awaiting review, has the pause under
    ``"paused"`` (its ``kind`` says which); not once the pause has been answered (a resume
    stopped while applying a review decision).
    """
    saved = await checkpointer.aget_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}})
    if saved is None:
        return None
    state = dict(saved.checkpoint["channel_values"])
    state.update(await replay_delta_channels(checkpointer, saved))
    paused_task: str | None = None
    answers: dict[str, int] = {}
    pending: dict[str, list[Any]] = {}
    for task_id, channel, value in saved.pending_writes or ():
        if channel in ("client_updates", "client_failures"):
            pending.setdefault(channel, []).append(value)
        elif channel == INTERRUPT and value:
            state["paused"], paused_task = _interrupt_value(value), task_id
        elif channel == RESUME and isinstance(value, list):
            answers[task_id] = len(value)  # the answers a node's interrupts got so far
    for channel, values in pending.items():
        state[channel] = merge_all(state.get(channel), values)
    if paused_task is not None and answers.get(paused_task, 0) >= state["paused"].get("attempt", 1):
        del state["paused"]  # answered: a resume continues from the answer
    return state


def _interrupt_value(value: Any) -> Any:
    first = value[0] if isinstance(value, (list, tuple)) else value
    return getattr(first, "value", first)


class RunPaused(RuntimeError):
    """A round got fewer client updates than its quorum: the run is paused, and resuming it
    asks the missing clients again.

    Attributes:
        pause: The round, the clients that arrived, the quorum, and why the others dropped.
    """

    def __init__(self, pause: dict[str, Any]) -> None:
        super().__init__(quorum_message(pause))
        self.pause = pause


class RunAwaitingReview(RuntimeError):
    """A round's merged prompt awaits a person's review (``[review] required``): the run is
    paused; continue it with a decision (``stream_run(..., review=...)``, ``run_federated(...,
    resume=True, review=...)`` or ``fedtextgrad-graph review RUN_ID``).

    Attributes:
        pause: The :class:`~fedtextgrad_graph.server.review.ReviewRequest`: the round, the
            candidate and current prompts, their scores and the aggregation strategy.
    """

    def __init__(self, pause: dict[str, Any]) -> None:
        super().__init__(review_message(pause))
        self.pause = pause


def awaiting_review(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The review request a saved run is paused on, if any (see :func:`saved_state`)."""
    paused = state.get("paused")
    return paused if isinstance(paused, dict) and paused.get("kind") == "review" else None


class RunExistsError(ValueError):
    """Starting a run under an id that already has checkpoints (resume it instead)."""


class BudgetSpent(ValueError):
    """Resuming a run stopped by its ``[budget]`` without raising the budget."""


def run_status(state: dict[str, Any]) -> str:
    """``completed`` once the run stopped (and took its final test if configured), ``paused``
    below its quorum, ``awaiting_review`` while a merged prompt awaits review, else
    ``incomplete`` (still running, or interrupted and resumable)."""
    if awaiting_review(state):
        return "awaiting_review"
    if state.get("paused"):
        return "paused"
    if state.get("stop_reason") in (None, "budget"):
        return "incomplete"  # a run stopped by its budget goes on once the budget is raised
    wants_test = state.get("run_config", {}).get("evaluation", {}).get("test", True)
    return "completed" if state.get("test_accuracy") is not None or not wants_test else "incomplete"


def _events(namespace: tuple[str, ...], chunk: dict[str, Any]) -> list[RunEvent]:
    if chunk.get("__metadata__", {}).get("cached"):
        return []  # a write replayed from the checkpoint on resume: it was reported before
    events: list[RunEvent] = []
    for node, update in chunk.items():
        if node.startswith("__") or not update:
            continue
        if namespace and node == "textgrad_step":
            events.extend(RunEvent("local_step", dict(record)) for record in update["steps"])
        elif namespace:
            continue
        elif node == "broadcast":
            events.append(RunEvent("round_started", {"round": update["round"], "clients": update["selected_clients"]}))
        elif node == "client_optimizer":
            for cid, u in update.get("client_updates", {}).items():
                summary = {k: u[k] for k in ("round", "task", "accepted", "rejected", "malformed", "llm_calls", "blocked", "redacted")}
                summary["unchanged"] = u.get("unchanged", 0)  # absent from older sites
                events.append(RunEvent("client_finished", {"client_id": cid, **summary, "steps": u["steps"]}))
            for cid, reason in update.get("client_failures", {}).items():
                events.append(RunEvent("client_dropped", {"client_id": cid, "reason": reason}))
        elif node == "screen":
            m = update["round_metrics"]
            events.append(RunEvent("screened", {"screened_out": m["screened_out"], "scores": m["screen_scores"]}))
        elif node in ("aggregate", "repair"):
            m = update["round_metrics"]
            if m.get("merge_progress") is None:  # the merge is done (a uid merge may go on to repair)
                merge = m.get("merge")
                strategy = m.get("aggregation") or (merge or {}).get("strategy", "")
                events.append(
                    RunEvent(
                        "aggregated",
                        {
                            "prompt_chars": m["prompt_chars"],
                            "prompt_tokens": m["prompt_tokens"],
                            "aggregation": strategy,
                            "all_screened_out": m.get("all_screened_out", False),
                            "merge": merge,
                        },
                    )
                )
        elif node == "evaluate":
            metrics = update["round_metrics"]
            events.append(
                RunEvent(
                    "evaluated",
                    {
                        "validation_accuracy": metrics["validation_accuracy"],
                        "dropped": metrics["evaluation_dropped"],
                        "client_validation": metrics.get("client_validation", {}),
                        "validation_by_task": metrics.get("validation_by_task", {}),
                    },
                )
            )
        elif node == "review" and update.get("round_metrics", {}).get("review"):
            metrics = update["round_metrics"]
            review = {k: metrics["review"][k] for k in ("decision", "note", "candidate_validation_accuracy")}
            events.append(RunEvent("reviewed", {**review, "validation_accuracy": metrics.get("validation_accuracy")}))
        elif node == "check_convergence":
            record = update["history"][-1]
            events.append(
                RunEvent(
                    "round_finished",
                    {
                        "round": record["round"],
                        "validation_accuracy": record["validation_accuracy"],
                        "improved": record["improved"],
                        "new_best": update.get("best_round") == record["round"],
                        "stop_reason": update["stop_reason"],
                        "dropped": record.get("dropped", {}),
                        "empty_replies": record.get("empty_replies", {}),
                        "update_success_rate": record.get("update_success_rate"),
                        "llm_tokens": record.get("llm_tokens"),
                    },
                )
            )
        elif node == "final_test":
            events.append(RunEvent("test_finished", {"test_accuracy": update["test_accuracy"]}))
    return events


async def stream_run(
    runtime: FederationRuntime,
    checkpointer: BaseCheckpointSaver[str],
    run_id: str,
    *,
    resume: bool,
    on_event: Callable[[RunEvent], None] | None = None,
    review: ReviewDecision | None = None,
    langchain_config: RunnableConfig | None = None,
) -> dict[str, Any]:
    """Run (or resume) the round graph to the end, checkpointing every step; return the final state.

    Resuming a run paused below its quorum asks the missing clients of that round again;
    resuming a run awaiting review needs ``review``, the decision to continue with.
    ``langchain_config``: callbacks, tags and metadata the graph and every LLM call run with.
    The process holds the run's lease (see :mod:`.checkpoint.lease`) from before anything is
    written until it returns: one writer per run.

    Raises:
        ValueError: ``run_id`` is not a safe name (see :func:`.run_ids.check_run_id`).
        RunLeaseHeld: Another live process is running ``run_id``.
        RunLeaseLost: The lease was taken over while running; this process stopped writing.
        RunExistsError: ``resume`` is false and ``run_id`` already has checkpoints.
        RunPaused: A round got fewer client updates than its quorum (the run stays resumable).
        RunAwaitingReview: A round's merged prompt awaits review (``[review] required``).
        ValueError: ``review`` is given for a run not awaiting review, is invalid, or is
            missing for a run that awaits review.
    """
    async with hold_run_lease(checkpointer, check_run_id(run_id)):
        with paced_collection():
            return await _stream_run(
                runtime, checkpointer, run_id, resume=resume, on_event=on_event, review=review, langchain_config=langchain_config
            )


async def _stream_run(
    runtime: FederationRuntime,
    checkpointer: BaseCheckpointSaver[str],
    run_id: str,
    *,
    resume: bool,
    on_event: Callable[[RunEvent], None] | None,
    review: ReviewDecision | None,
    langchain_config: RunnableConfig | None,
) -> dict[str, Any]:
    _check_prices(runtime)
    graph = build_round_graph(runtime, checkpointer=checkpointer)
    config = merge_configs(langchain_config, run_config(run_id, runtime.config))
    saved = await saved_state(checkpointer, run_id)
    if saved is not None and not resume:
        raise RunExistsError(f"run {run_id!r} already exists; resume it instead of starting it again")
    graph_input = _graph_input(runtime.config, saved, resume=resume, review=review)
    if resume and saved is not None and saved.get("stop_reason") == "budget":
        await _continue_past_budget(graph, config, runtime.config, saved)
    if resume and on_event is not None and saved is not None:
        on_event(RunEvent("resumed", {"round": saved.get("round", 0), "status": run_status(saved)}))
    if on_event is not None:
        runtime.transport.on_event = lambda kind, data: on_event(RunEvent(cast(EventKind, kind), data))
    await runtime.transport.start(run_id=run_id)
    pause: dict[str, Any] | None = None
    async for item in graph.astream(graph_input, config, durability="sync", stream_mode="updates", subgraphs=True):
        namespace, chunk = cast(_SubgraphUpdate, item)  # langgraph types every stream mode's items alike
        if not namespace and INTERRUPT in chunk:
            pause = _interrupt_value(chunk[INTERRUPT])
            if on_event is not None:
                on_event(RunEvent("paused", dict(pause)))
            continue  # the stream ends once the interrupt is saved
        if on_event is not None:
            for event in _events(namespace, chunk):
                on_event(event)
    if pause is not None:
        raise RunAwaitingReview(pause) if pause.get("kind") == "review" else RunPaused(pause)
    return (await graph.aget_state(config)).values


def _check_prices(runtime: FederationRuntime) -> None:
    """A ``[budget] max_usd`` needs a price for every model the run uses."""
    settings = runtime.config
    if settings.budget.max_usd is None:
        return
    missing = unpriced_models(runtime.models.names(runtime.roles_in_use()), settings.pricing)
    if missing:
        raise ConfigError(
            f"budget.max_usd: no [pricing] for {', '.join(repr(m) for m in missing)}; add "
            f'[pricing."{missing[0]}"] input_per_million = ..., output_per_million = ... (USD per million tokens)'
        )


async def _continue_past_budget(graph: Any, config: RunnableConfig, settings: FedTextGradConfig, saved: dict[str, Any]) -> None:
    """Let a run stopped by its budget go on under ``settings``' raised budget (saved with it)."""
    tokens, usd = int(saved.get("spent_tokens") or 0), saved.get("spent_usd")
    if budget_crossed(settings.budget, tokens, usd):
        raise BudgetSpent(
            f"the run stopped at its budget ({budget_line(settings.budget, tokens, usd)}); raise [budget] max_tokens or "
            "max_usd to continue (fedtextgrad-graph resume RUN_ID --max-tokens N --max-usd X)"
        )
    run_config = {**saved["run_config"], "budget": settings.budget.model_dump(mode="json")}
    await graph.aupdate_state(config, {"stop_reason": None, "run_config": run_config}, as_node="check_convergence")


def _graph_input(
    config: FedTextGradConfig, saved: dict[str, Any] | None, *, resume: bool, review: ReviewDecision | None
) -> Any:
    """What to stream into the graph: a new run's initial state, or how to continue a saved one."""
    pending = awaiting_review(saved) if saved is not None else None
    if review is not None and pending is None:
        raise ValueError("the run is not awaiting review")
    if not resume:
        return initial_state(config)
    if pending is not None:
        if review is None:
            raise ValueError(f"{review_message(pending)}; continue it with a review decision")
        return Command(resume=dict(parse_decision(review)))
    return Command(resume="retry") if saved is not None and saved.get("paused") else None


async def run_federated(
    config: FedTextGradConfig,
    *,
    run_id: str | None = None,
    checkpointer: BaseCheckpointSaver[str] | None = None,
    models: Mapping[str, BaseChatModel | Answerer] | None = None,
    data: FederatedData | None = None,
    scorers: Mapping[str, Scorer] | None = None,
    resume: bool = False,
    on_event: Callable[[RunEvent], None] | None = None,
    transport: ClientTransport | None = None,
    review: ReviewDecision | None = None,
    verbose: bool = False,
    callbacks: Callbacks = None,
    runnable_config: RunnableConfig | None = None,
) -> dict[str, Any]:
    """Run federated prompt optimization from a config and return the final state.

    Args:
        config: The run config (see :func:`fedtextgrad_graph.load_config`).
        run_id: The checkpoint thread id; a new one by default.
        checkpointer: Where progress is saved (in memory by default).
        models: Ready LangChain chat models by role or ``"<client_id>.<role>"``.
        data: Client data to use instead of loading the config's files.
        scorers: Metrics by task name, replacing the configured ones.
        resume: Continue ``run_id`` from its last checkpoint instead of starting it.
        on_event: Called with each progress event (a :class:`~fedtextgrad_graph.RunEvent`;
            see :mod:`fedtextgrad_graph.events` for every kind and its fields).
        transport: How to reach the clients, instead of the config's ``[transport]``.
        review: With ``resume``, the decision on the merged prompt of a run awaiting review:
            ``{"decision": "approve" | "edit" | "reject", "prompt": ..., "note": ...}``.
        verbose: Show the run live on stdout, as ``fedtextgrad-graph run`` does (off by
            default: the library prints nothing unless asked).
        callbacks: LangChain callback handlers for the graph and every LLM call (each call
            carries metadata and tags: run id, role, client id, round, local step; see
            docs/tracing.md).
        runnable_config: A LangChain ``RunnableConfig`` (tags, metadata, callbacks...)
            merged into the run's own; the run id stays the thread id.

    Raises:
        ValueError: ``run_id`` is not a safe name (letters, digits, ``-``, ``_``, ``.``).
        RunLeaseHeld: Another live process is running ``run_id``.
        RunPaused: A round got fewer client updates than its quorum; resume the run to retry.
        RunAwaitingReview: A round's merged prompt awaits review; resume with ``review``.
    """
    if run_id is not None:
        check_run_id(run_id)
    run_id = run_id or new_run_id(config.run.name)
    runtime = FederationRuntime.create(config, transport=transport, data=data, models=models, scorers=scorers)
    try:
        with run_listener(config, run_id, on_event=on_event, verbose=verbose, resume=resume, simulated=runtime.models.simulated) as listener:
            if listener is not None:
                runtime.gateway.on_call = lambda record: listener(llm_call_event(record))
            return await stream_run(
                runtime,
                checkpointer or InMemorySaver(),
                run_id,
                resume=resume,
                on_event=listener,
                review=review,
                langchain_config=merge_configs(runnable_config, RunnableConfig(callbacks=callbacks)),
            )
    finally:
        await runtime.aclose()


def results_payload(state: dict[str, Any], *, run_id: str) -> dict[str, Any]:
    """The content of ``results.json``. ``models`` and ``simulated`` come from the round records:
    what each round really ran with (see :mod:`.model_usage`), ``models_by_round`` groups the
    rounds by the models they used. ``baseline_by_task``/``test_by_task``: counts per task
    (``None`` when not scored); ``llm_tokens``: the run's provider-reported tokens (every
    round, the baseline and the final test; ``None`` for a run recorded before tokens were);
    ``llm_calls``: the run's LLM calls, the same way (``None`` before they were recorded)."""
    history = state.get("history", [])
    return {
        "run_id": run_id,
        "status": run_status(state),
        "simulated": simulated_used(history),
        "models": used_models(history),
        "models_by_round": models_by_round(history),
        "rounds": len(history),
        "stop_reason": state.get("stop_reason"),
        "best_round": state.get("best_round"),
        "baseline_validation_accuracy": state.get("baseline_accuracy"),
        "best_validation_accuracy": state.get("best_score"),
        "test_accuracy": state.get("test_accuracy"),
        "best_prompt": state.get("best_prompt"),
        "latest_prompt": latest_prompt(state),
        "history": history,
        "config": state.get("run_config"),
        "pending_review": awaiting_review(state),
        "client_test": state.get("client_test"),
        "baseline_by_task": state.get("baseline_by_task"),
        "test_by_task": state.get("test_by_task"),
        "llm_tokens": _run_tokens(state),
        "llm_calls": _run_calls(state),
        "llm_usage": run_usage(state),
        "baseline_llm_usage": state.get("baseline_llm_usage"),
        "test_llm_usage": state.get("test_llm_usage"),
        "cost_usd": run_cost(state),
        "baseline_cost_usd": state.get("baseline_cost_usd"),
        "test_cost_usd": state.get("test_cost_usd"),
        "budget": _budget(state),
    }


def run_usage(state: Mapping[str, Any]) -> Usage:
    """The run's LLM calls and tokens by caller and role: its finished rounds, the baseline
    and the final test."""
    parts = [r.get("llm_usage") for r in state.get("history", [])]
    return add_usage(*parts, state.get("baseline_llm_usage"), state.get("test_llm_usage"))


def run_cost(state: Mapping[str, Any]) -> float | None:
    """USD of the run's calls under ``[pricing]``; ``None`` when any part was not priced."""
    parts = [r.get("cost_usd") for r in state.get("history", [])]
    if state.get("baseline_llm_usage"):
        parts.append(state.get("baseline_cost_usd"))
    if state.get("test_llm_usage"):
        parts.append(state.get("test_cost_usd"))
    return None if not parts or any(p is None for p in parts) else sum(parts)


def _budget(state: Mapping[str, Any]) -> dict[str, Any]:
    """The run's ``[budget]`` limits and the spend checked against them."""
    limits = state.get("run_config", {}).get("budget", {})
    return {
        "max_usd": limits.get("max_usd"),
        "max_tokens": limits.get("max_tokens"),
        "spent_tokens": state.get("spent_tokens"),
        "spent_usd": state.get("spent_usd"),
    }


def _run_tokens(state: Mapping[str, Any]) -> TokenCount | None:
    """The tokens of a run's finished rounds, baseline and final test (``None`` if none of
    them recorded tokens: a run made before they were)."""
    parts = [r.get("llm_tokens") for r in state.get("history", [])]
    parts += [state.get("baseline_llm_tokens"), state.get("test_llm_tokens")]
    recorded = [p for p in parts if p is not None]
    return add_tokens(*recorded) if recorded else None


def _run_calls(state: Mapping[str, Any]) -> int | None:
    """The LLM calls of a run's finished rounds, baseline and final test (``None`` for a run
    made before the baseline's and the test's calls were recorded)."""
    scorings = [("baseline_llm_calls", "baseline_accuracy"), ("test_llm_calls", "test_accuracy")]
    if any(state.get(score) is not None and state.get(calls) is None for calls, score in scorings):
        return None
    rounds: int = sum(r.get("llm_calls", 0) for r in state.get("history", []))
    return rounds + sum(int(state.get(c) or 0) for c, _ in scorings)


def latest_prompt(state: Mapping[str, Any]) -> str | None:
    """The run's newest global prompt; with ``[review] required``, the newest approved one
    (a merged prompt awaiting review is not served)."""
    if state.get("run_config", {}).get("review", {}).get("required"):
        return approved_prompt(state)
    return state.get("global_prompt")


def write_run_files(run_dir: Path, payload: dict[str, Any]) -> None:
    """Write ``results.json``, ``config.json`` and ``best_prompt.txt`` (atomically each)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "results.json": json.dumps(payload, indent=2, ensure_ascii=False),
        "config.json": json.dumps(payload["config"], indent=2, ensure_ascii=False),
    }
    if payload["best_prompt"]:
        files["best_prompt.txt"] = payload["best_prompt"] + "\n"
    for name, text in files.items():
        tmp = run_dir / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(run_dir / name)
