"""Federating an existing LangChain app's prompt, and using the result in chains and agents."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from fedtextgrad_graph import (
    Example,
    FederatedPrompt,
    PromptedApp,
    aload_prompt,
    as_chat_prompt,
    as_system_message,
    create_checkpointer,
    federate_app,
    load_prompt,
)
from fedtextgrad_graph.checkpoint import sqlite_url

from ..conftest import ScriptedChatModel

BRACES = 'Reply as JSON like {"answer": <number>} and never print {placeholders}.'
STOCK = {f"How many crates of item {i} are left?": str(i * 3) for i in range(1, 19)}


def _clerk() -> ScriptedChatModel:
    """The app's chat model: right only when its system prompt tells it to multiply by three."""

    def respond(system: str, user: str) -> str:
        item = int(user.split("item ")[1].split()[0])
        return f"There are {item * 3 if 'times three' in system else item} crates."

    return ScriptedChatModel(respond=respond)


def _optimizer() -> ScriptedChatModel:
    def respond(system: str, user: str) -> str:
        if "IMPROVED_VARIABLE" in system:
            return "<IMPROVED_VARIABLE>You are a stock clerk. Crates hold items times three.</IMPROVED_VARIABLE>"
        if "merge" in user.lower():
            return "You are a stock clerk. Crates hold items times three."
        return "The prompt never says how crates relate to items."

    return ScriptedChatModel(respond=respond)


def _clients() -> dict[str, tuple[list[Example], list[Example]]]:
    items = [Example(q, a) for q, a in STOCK.items()]
    return {"store-a": (items[0:6], items[12:15]), "store-b": (items[6:12], items[15:18])}


def _last_number(prediction: str, target: str) -> bool:
    return prediction.split()[-2] == target


async def _federate(app: PromptedApp, **kwargs):
    return await federate_app(
        app,
        _clients(),
        initial_prompt="You are a stock clerk.",
        optimizer=_optimizer(),
        metric=_last_number,
        rounds=2,
        local_steps=1,
        **kwargs,
    )


async def test_federate_an_agent_prompt():
    model = _clerk()
    app = PromptedApp(lambda prompt: create_agent(model, tools=[], system_prompt=prompt), name="clerk-agent")
    state = await _federate(app)
    assert [r["round"] for r in state["history"]] == [1, 2]
    assert state["baseline_accuracy"] == 0.0
    assert "times three" in state["best_prompt"] and state["best_score"] == 1.0
    systems = {system for system, _ in model.requests}
    assert "You are a stock clerk." in systems  # the initial prompt reached the agent's model
    assert any("times three" in s for s in systems)  # and so did the optimized one
    assert state["history"][0]["models"]["task"] == "app:clerk-agent"


async def test_federate_a_chain_that_takes_the_prompt_as_a_variable(tmp_path):
    model = _clerk()
    chain = ChatPromptTemplate.from_messages([("system", "{system_prompt}"), ("human", "{input}")]) | model | StrOutputParser()
    app = PromptedApp.from_runnable(chain)
    url = sqlite_url(tmp_path / "app.sqlite")
    async with create_checkpointer(url) as saver:
        state = await _federate(app, checkpointer=saver, run_id="chain", evaluation="server")
    assert state["best_score"] == 1.0
    assert await aload_prompt("chain", checkpointer=url) == state["best_prompt"]
    assert load_prompt("chain", checkpointer=url, which="latest") == state["global_prompt"]


async def test_federate_app_checks_its_examples():
    with pytest.raises(ValueError, match=r"clients\['a'\] train\[0\]"):
        await federate_app(PromptedApp(lambda p: _clerk()), {"a": ([42], [])}, initial_prompt="x", optimizer=_optimizer())
    with pytest.raises(ValueError, match="validation examples on every client"):
        await federate_app(PromptedApp(lambda p: _clerk()), {"a": ([("q", "1")], [])}, initial_prompt="x", optimizer=_optimizer())


def test_prompt_with_braces_reaches_the_model_intact():
    model = ScriptedChatModel(respond=lambda system, user: system)
    chain = as_chat_prompt(BRACES) | model | StrOutputParser()
    assert chain.invoke({"input": "How many?"}) == BRACES
    assert as_system_message(BRACES).content == BRACES
    with pytest.raises(KeyError):
        ChatPromptTemplate.from_messages([("system", BRACES), ("human", "{input}")]).invoke({"input": "x"})


async def _saved_run(tmp_path) -> str:
    """A finished federated run whose prompts contain braces; returns its checkpoint URL."""
    url = sqlite_url(tmp_path / "served.sqlite")
    optimizer = ScriptedChatModel(
        respond=lambda system, user: f"<IMPROVED_VARIABLE>{BRACES} Crates hold items times three.</IMPROVED_VARIABLE>"
        if "IMPROVED_VARIABLE" in system
        else "feedback"
    )
    app = PromptedApp(lambda prompt: create_agent(_clerk(), tools=[], system_prompt=prompt))
    async with create_checkpointer(url) as saver:
        await federate_app(app, _clients(), initial_prompt="You are a stock clerk.", optimizer=optimizer,
                           metric=_last_number, rounds=1, local_steps=1, checkpointer=saver, run_id="served")
    return url


async def test_middleware_serves_the_runs_prompt_to_an_agent(tmp_path):
    url = await _saved_run(tmp_path)
    latest = await aload_prompt("served", checkpointer=url, which="latest")
    assert BRACES in latest
    seen = ScriptedChatModel(respond=lambda system, user: "ok")
    agent = create_agent(seen, tools=[], system_prompt="old prompt", middleware=[FederatedPrompt("served", checkpointer=url)])
    await agent.ainvoke({"messages": [("user", "hello")]})
    agent.invoke({"messages": [("user", "hello again")]})
    assert [system for system, _ in seen.requests] == [latest, latest]


async def test_middleware_caches_and_survives_a_missing_run(tmp_path):
    url = await _saved_run(tmp_path)
    now = [0.0]
    middleware = FederatedPrompt("served", checkpointer=url, refresh_s=30, clock=lambda: now[0])
    seen = ScriptedChatModel(respond=lambda system, user: "ok")
    agent = create_agent(seen, tools=[], system_prompt="own prompt", middleware=[middleware])
    await agent.ainvoke({"messages": [("user", "a")]})
    middleware.run_id = "not-a-run"  # the store now has nothing for it ...
    now[0] = 10.0
    await agent.ainvoke({"messages": [("user", "b")]})  # ... but the cached prompt is fresh
    now[0] = 100.0
    await agent.ainvoke({"messages": [("user", "c")]})  # stale: re-read fails, last prompt is kept
    first = seen.requests[0][0]
    assert BRACES in first and [s for s, _ in seen.requests] == [first, first, first]

    fresh = FederatedPrompt("not-a-run", checkpointer=url)
    agent = create_agent(seen, tools=[], system_prompt="own prompt", middleware=[fresh])
    await agent.ainvoke({"messages": [("user", "d")]})
    assert seen.requests[-1][0] == "own prompt"  # nothing served yet: the agent keeps its own
