"""Federate the system prompt of an existing LangChain app across three stores.

    python integrations/langchain_app/app.py                      # offline, simulated model
    python integrations/langchain_app/app.py --agent              # the same app as an agent
    OPENAI_API_KEY=... python integrations/langchain_app/app.py --model openai:gpt-4o-mini
    python integrations/langchain_app/app.py --model qwen2.5 --base-url http://localhost:11434/v1

Each store keeps its own inventory questions; only the prompt leaves a store. At the end the
optimized prompt is loaded back from the checkpoint and served to an agent. The checkpoint is
where ``fedtextgrad-graph`` looks for it, so ``fedtextgrad-graph status RUN_ID`` shows the run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from fedtextgrad_graph import (
    CheckpointError,
    ConfigError,
    FederatedPrompt,
    PromptedApp,
    RunEvent,
    RunLeaseHeld,
    as_chat_prompt,
    create_checkpointer,
    federate_app,
    load_bbh,
    load_prompt,
)
from fedtextgrad_graph.checkpoint import redacted_url, sqlite_url
from fedtextgrad_graph.config import ModelSpec
from fedtextgrad_graph.models import SIMULATED_MODEL, create_chat_model
from fedtextgrad_graph.runs import new_run_id

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "object_counting.json"
INITIAL_PROMPT = "You are the stock assistant of a small store. Answer questions about what is on the shelves."
FORMAT = "End with a line 'Answer: N' where N is a number."


def existing_chain(model: BaseChatModel) -> Runnable:
    """The app the stores already run: a prompt template, a chat model, a string parser."""
    prompt = ChatPromptTemplate.from_messages([("system", "{system_prompt}"), ("human", "{input}")])
    return prompt | model | StrOutputParser()


def build_app(model: BaseChatModel, *, agent: bool) -> PromptedApp:
    if agent:
        return PromptedApp(lambda prompt: create_agent(model, tools=[], system_prompt=prompt), name="stock-agent")
    return PromptedApp.from_runnable(existing_chain(model), name="stock-chain")  # fills {system_prompt} and {input}


def store_data(seed: int = 0) -> dict:
    examples = load_bbh(DATA)
    random.Random(seed).shuffle(examples)
    stores = ["store-north", "store-south", "store-east"]
    return {store: (examples[i * 12 : i * 12 + 8], examples[i * 12 + 8 : i * 12 + 12]) for i, store in enumerate(stores)}


def show(event: RunEvent) -> None:
    d = event.data
    if event.kind == "round_started":
        print(f"round {d['round']}: stores {', '.join(d['clients'])}")
    elif event.kind == "client_finished":
        print(f"  {d['client_id']}: {d['accepted']} accepted, {d['rejected']} rejected, {d['malformed']} malformed, {d.get('unchanged', 0)} unchanged updates")
    elif event.kind == "round_finished":
        print(f"  validation accuracy {d['validation_accuracy']:.2f}" + (" (new best)" if d["new_best"] else ""))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=SIMULATED_MODEL, help="'simulated' (offline) or an init_chat_model string, e.g. openai:gpt-4o-mini")
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (vLLM, Ollama, LM Studio...); no API key needed")
    parser.add_argument("--agent", action="store_true", help="federate an agent from create_agent instead of a chain")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-retries", type=int, default=8, help="retries of a failed LLM call (default 8)")
    parser.add_argument("--run-id", default=new_run_id("langchain-app"), help="name of the run (default: a new one)")
    parser.add_argument("--resume", action="store_true", help="continue --run-id from its checkpoint")
    parser.add_argument("--checkpoint", help="checkpoint URL (default: sqlite in runs/RUN_ID/, where fedtextgrad-graph looks)")
    parser.add_argument("--verbose", action="store_true", help="show the live view of 'fedtextgrad-graph run' instead of a line per round")
    return parser.parse_args()


def inspect_commands(run_id: str, checkpoint: str, default: str) -> str:
    """The commands that show the run (the checkpoint URL only when it is not the default one)."""
    where = "" if checkpoint == default else f" --checkpoint '{redacted_url(checkpoint)}'"
    return "\n".join(f"  fedtextgrad-graph {command} {run_id}{where}" for command in ("status", "export", "report"))


def resume_command(run_id: str) -> str:
    """This command again, continuing ``run_id``."""
    argv = [arg for arg in sys.argv[1:] if arg != "--resume"]
    if "--run-id" not in argv:
        argv += ["--run-id", run_id]
    return " ".join(["python", sys.argv[0], *argv, "--resume"])


def one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


async def main() -> int:
    args = parse_args()
    default_checkpoint = sqlite_url(Path("runs") / args.run_id / "checkpoint.sqlite")
    checkpoint = args.checkpoint or default_checkpoint
    endpoint = f" at {args.base_url}" if args.base_url else ""
    try:
        if args.base_url and args.model == SIMULATED_MODEL:
            raise ConfigError("--base-url needs --model, the name of a model the endpoint serves")
        model = create_chat_model(ModelSpec(model=args.model, base_url=args.base_url))
    except ConfigError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    if args.model == SIMULATED_MODEL and not args.verbose:  # the live view shows its own banner
        print("SIMULATED MODEL: scripted offline replies, to show the pipeline (not prompt quality)")
    print(f"run {args.run_id} (checkpoint {redacted_url(checkpoint)})")

    try:
        async with create_checkpointer(checkpoint) as checkpointer:
            state = await federate_app(
                build_app(model, agent=args.agent),
                store_data(),
                initial_prompt=INITIAL_PROMPT,
                format_instruction=FORMAT,
                optimizer=model,
                metric="last_number",
                rounds=args.rounds,
                local_steps=2,
                max_retries=args.max_retries,
                checkpointer=checkpointer,
                run_id=args.run_id,
                resume=args.resume,
                on_event=None if args.verbose else show,
                verbose=args.verbose,
            )
    except (CheckpointError, RunLeaseHeld, ValueError) as exc:  # bad input: nothing ran
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the endpoint failed mid-run: the checkpoint keeps every finished step
        print(f"error: run {args.run_id} stopped (model {args.model}{endpoint}): {one_line(exc)}; "
              f"once fixed, resume with: {resume_command(args.run_id)}", file=sys.stderr)
        return 1

    print("\nprompt lineage:")
    print(f"  initial  ({state['baseline_accuracy']:.2f}): {INITIAL_PROMPT} {FORMAT}")
    for record in state["history"]:
        print(f"  round {record['round']} ({record['validation_accuracy']:.2f}): {record['global_prompt']}")

    # Use the result: load the best prompt from the checkpoint, then run the app and an agent with it.
    best = load_prompt(args.run_id, checkpointer=checkpoint)
    question = "I have two apples, a plum, and three peaches. How many fruits do I have?"
    answer = (as_chat_prompt(best) | model | StrOutputParser()).invoke({"input": question})
    print(f"\nbest prompt (round {state['best_round']}):\n  {best}\nchain answer: {answer.splitlines()[-1]}")
    agent = create_agent(model, tools=[], middleware=[FederatedPrompt(args.run_id, checkpointer=checkpoint)])
    reply = agent.invoke({"messages": [("user", question)]})["messages"][-1].text
    print(f"agent answer (best prompt served live from the checkpoint): {reply.splitlines()[-1]}")
    print(f"\ninspect run {args.run_id} with:\n{inspect_commands(args.run_id, checkpoint, default_checkpoint)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
