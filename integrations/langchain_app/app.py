"""Federate the system prompt of an existing LangChain app across three stores.

    python integrations/langchain_app/app.py                      # offline, simulated model
    python integrations/langchain_app/app.py --agent              # the same app as an agent
    OPENAI_API_KEY=... python integrations/langchain_app/app.py --model openai:gpt-4o-mini

Each store keeps its own inventory questions; only the prompt leaves a store. At the end the
optimized prompt is loaded back from the checkpoint and served to an agent.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path

from langchain.agents import create_agent
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from fedtextgrad_graph import (
    FederatedPrompt,
    PromptedApp,
    RunEvent,
    SimulatedChatModel,
    as_chat_prompt,
    create_checkpointer,
    federate_app,
    load_bbh,
    load_prompt,
)
from fedtextgrad_graph.checkpoint import sqlite_url
from fedtextgrad_graph.runs import new_run_id

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "object_counting.json"
INITIAL_PROMPT = "You are the stock assistant of a small store. Answer questions about what is on the shelves."
FORMAT = "End with a line 'Answer: N' where N is a number."


def existing_chain(model: BaseChatModel) -> Runnable:
    """The app the stores already run: a prompt template, a chat model, a string parser."""
    prompt = ChatPromptTemplate.from_messages([("system", "{system_prompt}"), ("human", "{question}")])
    return prompt | model | StrOutputParser()


def build_app(model: BaseChatModel, *, agent: bool) -> PromptedApp:
    if agent:
        return PromptedApp(lambda prompt: create_agent(model, tools=[], system_prompt=prompt), name="stock-agent")
    return PromptedApp.from_runnable(existing_chain(model), prompt_key="system_prompt", input_key="question", name="stock-chain")


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="simulated", help="'simulated' (offline) or an init_chat_model string")
    parser.add_argument("--agent", action="store_true", help="federate an agent from create_agent instead of a chain")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint", default=sqlite_url(Path("runs") / "langchain-app.sqlite"))
    parser.add_argument("--run-id", default=new_run_id("langchain-app"))
    args = parser.parse_args()
    model = SimulatedChatModel() if args.model == "simulated" else init_chat_model(args.model)
    if args.model == "simulated":
        print("SIMULATED MODEL: scripted offline replies, to show the pipeline (not prompt quality)")

    async with create_checkpointer(args.checkpoint) as checkpointer:
        state = await federate_app(
            build_app(model, agent=args.agent),
            store_data(),
            initial_prompt=INITIAL_PROMPT,
            format_instruction=FORMAT,
            optimizer=model,
            metric="last_number",
            rounds=args.rounds,
            local_steps=2,
            checkpointer=checkpointer,
            run_id=args.run_id,
            on_event=show,
        )

    print("\nprompt lineage:")
    print(f"  initial  ({state['baseline_accuracy']:.2f}): {INITIAL_PROMPT} {FORMAT}")
    for record in state["history"]:
        print(f"  round {record['round']} ({record['validation_accuracy']:.2f}): {record['global_prompt']}")

    # Use the result: load it from the checkpoint, then run the app and an agent with it.
    best = load_prompt(args.run_id, checkpointer=args.checkpoint)
    question = "I have two apples, a plum, and three peaches. How many fruits do I have?"
    answer = (as_chat_prompt(best, human="{question}") | model | StrOutputParser()).invoke({"question": question})
    print(f"\nbest prompt (round {state['best_round']}):\n  {best}\nchain answer: {answer.splitlines()[-1]}")
    agent = create_agent(model, tools=[], middleware=[FederatedPrompt(args.run_id, checkpointer=args.checkpoint)])
    reply = agent.invoke({"messages": [("user", question)]})["messages"][-1].text
    print(f"agent answer (prompt served live from the checkpoint): {reply.splitlines()[-1]}")


if __name__ == "__main__":
    asyncio.run(main())
