"""The federated round as a LangGraph state graph.

    START -> baseline -> broadcast --Send(per selected client)--> client_optimizer (subgraph) -> aggregate
          -> evaluate -> check_convergence --(continue)--> broadcast
                                           --(stop)------> final_test -> END
"""

from __future__ import annotations

import random
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

from .aggregation import compose_prompt, count_tokens
from .client import build_client_graph, run_client
from .config import FedTextGradConfig
from .convergence import decide
from .evaluation import test_accuracy, validation_accuracy
from .runtime import FederationRuntime
from .state import ClientTask, RoundRecord, RoundState

__all__ = ["build_round_graph", "initial_state", "select_clients"]


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
    )


def build_round_graph(
    runtime: FederationRuntime, *, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """Compile the round graph over ``runtime``'s data and models.

    Args:
        runtime: Config, private client data, models and the LLM gateway.
        checkpointer: Where the graph saves its progress; the client subgraph shares it,
            so an interrupted client resumes from its last finished local step.
    """
    config = runtime.config
    client_graph = build_client_graph(runtime)

    async def baseline(state: RoundState) -> dict[str, Any]:
        """Score the initial prompt: the first reference for improvement and the first best.

        An empty input (LangGraph Studio's default) starts from :func:`initial_state`.
        """
        start: dict[str, Any] = {} if state.get("global_prompt") else dict(initial_state(config))
        prompt = state.get("global_prompt") or start["global_prompt"]
        if not config.evaluation.baseline:
            return start
        correct, total = await validation_accuracy(runtime, prompt, round=0)
        accuracy = correct / total
        return {
            **start,
            "baseline_accuracy": accuracy,
            "best_prompt": prompt,
            "best_score": accuracy,
            "best_round": 0,
            "reference_score": accuracy,
        }

    def broadcast(state: RoundState) -> dict[str, Any]:
        round = state["round"] + 1
        selected = select_clients(config.federation.client_ids(), config.federation.sampling_rate, config.run.seed, round)
        return {"round": round, "selected_clients": selected, "client_updates": None, "round_metrics": None}

    def fan_out(state: RoundState) -> list[Send]:
        return [
            Send("client_optimizer", ClientTask(client_id=cid, round=state["round"], global_prompt=state["global_prompt"]))
            for cid in state["selected_clients"]
        ]

    async def client_optimizer(task: ClientTask) -> dict[str, Any]:
        update = await run_client(
            client_graph,
            task,
            task_name=runtime.data.clients[task["client_id"]].task,
            local_steps=config.client.local_steps,
        )
        return {"client_updates": {task["client_id"]: update}}

    async def aggregate(state: RoundState) -> dict[str, Any]:
        calls = runtime.gateway.count()
        updates = state["client_updates"]
        prompts = {cid: updates[cid]["prompt"] for cid in state["selected_clients"]}
        merged = await runtime.aggregator(state["round"]).aggregate(
            prompts, format_instruction=config.prompt.format_instruction
        )
        metrics = {
            "prompt_chars": len(merged),
            "prompt_tokens": count_tokens(merged, config.aggregation.tokenizer),
            "tokenizer": config.aggregation.tokenizer,
            "aggregation": config.aggregation.strategy,
            "aggregation_llm_calls": runtime.gateway.count() - calls,
            "previous_prompt": state["global_prompt"],
        }
        return {"global_prompt": merged, "round_metrics": metrics}

    async def evaluate(state: RoundState) -> dict[str, Any]:
        calls = runtime.gateway.count()
        correct, total = await validation_accuracy(runtime, state["global_prompt"], round=state["round"])
        return {
            "round_metrics": {
                "validation_accuracy": correct / total,
                "validation_correct": correct,
                "validation_total": total,
                "evaluation_llm_calls": runtime.gateway.count() - calls,
            }
        }

    def check_convergence(state: RoundState) -> dict[str, Any]:
        metrics = dict(state["round_metrics"])
        previous_prompt = metrics.pop("previous_prompt")
        updates = state["client_updates"]
        accuracy = metrics["validation_accuracy"]
        verdict = decide(
            config.convergence,
            round=state["round"],
            accuracy=accuracy,
            best_score=state["best_score"],
            reference_score=state["reference_score"],
            rounds_without_improvement=state["rounds_without_improvement"],
            rounds_unchanged=state["rounds_unchanged"],
            prompt=state["global_prompt"],
            previous_prompt=previous_prompt,
        )
        record = RoundRecord(
            round=state["round"],
            clients=list(state["selected_clients"]),
            client_prompts={cid: updates[cid]["prompt"] for cid in state["selected_clients"]},
            client_metrics={
                cid: {k: u[k] for k in ("task", "accepted", "rejected", "malformed", "llm_calls", "steps")}
                for cid, u in updates.items()
            },
            global_prompt=state["global_prompt"],
            improved=verdict.improved,
            models=runtime.models.names(),
            llm_calls=sum(u["llm_calls"] for u in updates.values())
            + metrics["aggregation_llm_calls"]
            + metrics["evaluation_llm_calls"],
            **metrics,
        )
        out: dict[str, Any] = {
            "history": [record],
            "rounds_without_improvement": verdict.rounds_without_improvement,
            "rounds_unchanged": verdict.rounds_unchanged,
            "stop_reason": verdict.stop_reason,
        }
        if verdict.improved:
            out["reference_score"] = accuracy
        if verdict.new_best:
            out.update(best_prompt=state["global_prompt"], best_score=accuracy, best_round=state["round"])
        return out

    def next_step(state: RoundState) -> str:
        if state["stop_reason"] is None:
            return "broadcast"
        return "final_test" if config.evaluation.test else END

    async def final_test(state: RoundState) -> dict[str, Any]:
        correct, total = await test_accuracy(runtime, state["best_prompt"] or state["global_prompt"])
        return {"test_accuracy": correct / total}

    graph = StateGraph(RoundState)
    graph.add_node("baseline", baseline)
    graph.add_node("broadcast", broadcast)
    graph.add_node("client_optimizer", client_optimizer, input_schema=ClientTask)
    graph.add_node("aggregate", aggregate)
    graph.add_node("evaluate", evaluate)
    graph.add_node("check_convergence", check_convergence)
    graph.add_node("final_test", final_test)
    graph.add_edge(START, "baseline")
    graph.add_edge("baseline", "broadcast")
    graph.add_conditional_edges("broadcast", fan_out, ["client_optimizer"])
    graph.add_edge("client_optimizer", "aggregate")
    graph.add_edge("aggregate", "evaluate")
    graph.add_edge("evaluate", "check_convergence")
    graph.add_conditional_edges("check_convergence", next_step, ["broadcast", "final_test", END])
    graph.add_edge("final_test", END)
    return graph.compile(checkpointer=checkpointer, name="fedtextgrad_round")
