"""The Python API a LangChain user meets: one serving default, input variables checked before
any model call, typed progress events, and the live view on request."""

from __future__ import annotations

import inspect
from typing import Any, get_args

import pytest
from langchain.agents import create_agent
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import TypeAdapter

from fedtextgrad_graph import (
    EVENT_DATA,
    EVENT_KINDS,
    FederatedPrompt,
    PromptedApp,
    RunEvent,
    aload_prompt,
    as_chat_prompt,
    federate_app,
    load_prompt,
)

from ..conftest import ScriptedChatModel
from .test_apps import _clerk, _clients, _federate


def _never_called() -> ScriptedChatModel:
    def respond(system: str, user: str) -> str:
        raise AssertionError("a model was called before the input variables were checked")

    return ScriptedChatModel(respond=respond)


async def _saved(best: str, latest: str) -> InMemorySaver:
    """A store holding one run, ``r``, whose best and latest prompts differ."""
    saver = InMemorySaver()
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"best_prompt": best, "global_prompt": latest, "run_config": {}}
    versions = dict.fromkeys(checkpoint["channel_values"], 1)
    checkpoint["channel_versions"] = versions
    await saver.aput({"configurable": {"thread_id": "r", "checkpoint_ns": ""}}, checkpoint, {}, versions)
    return saver


def test_every_way_to_read_a_prompt_defaults_to_the_best():
    for function in (load_prompt, aload_prompt, FederatedPrompt.__init__):
        assert inspect.signature(function).parameters["which"].default == "best", function


async def test_middleware_serves_the_best_prompt_unless_asked_for_the_latest():
    saver = await _saved(best="BEST", latest="LATEST")
    seen = ScriptedChatModel(respond=lambda system, user: "ok")
    for middleware in (FederatedPrompt("r", checkpointer=saver), FederatedPrompt("r", checkpointer=saver, which="latest")):
        await create_agent(seen, tools=[], middleware=[middleware]).ainvoke({"messages": [("user", "hi")]})
    assert [system for system, _ in seen.requests] == ["BEST", "LATEST"]
    assert await aload_prompt("r", checkpointer=saver) == "BEST"


async def test_a_chain_with_another_user_variable_fails_before_any_model_call():
    model = _never_called()
    chain = ChatPromptTemplate.from_messages([("system", "{system_prompt}"), ("human", "{question}")]) | model | StrOutputParser()
    optimizer = _never_called()
    with pytest.raises(ValueError) as caught:
        await federate_app(PromptedApp.from_runnable(chain, name="shop"), _clients(), initial_prompt="x", optimizer=optimizer)
    message = str(caught.value)
    assert "app 'shop'" in message and "['question', 'system_prompt']" in message and "['input', 'system_prompt']" in message
    assert "input_key=" in message and "\n" not in message
    assert model.requests == [] and optimizer.requests == []


async def test_a_chain_without_the_prompt_variable_fails_before_any_model_call():
    chain = ChatPromptTemplate.from_messages([("system", "You help."), ("human", "{input}")]) | _never_called()
    with pytest.raises(ValueError, match=r"put \{system_prompt\} in its system message"):
        await federate_app(PromptedApp.from_runnable(chain), _clients(), initial_prompt="x", optimizer=_never_called())


async def test_a_factory_app_whose_input_does_not_fit_fails_before_any_model_call():
    def factory(prompt: str) -> Any:
        return as_chat_prompt(prompt) | _never_called()  # takes {input}; the default sends messages

    with pytest.raises(ValueError, match=r"variables are \['input'\], but it is given \['messages'\]"):
        await federate_app(PromptedApp(factory), _clients(), initial_prompt="x", optimizer=_never_called())


async def test_as_chat_prompt_and_from_runnable_agree_on_the_user_variable():
    model = _clerk()
    chain = as_chat_prompt("{system_prompt}", human="{input}") | model | StrOutputParser()
    template = ChatPromptTemplate.from_messages([("system", "{system_prompt}"), ("human", "{input}")]) | model | StrOutputParser()
    state = await _federate(PromptedApp.from_runnable(template))
    assert state["best_score"] == 1.0
    assert "input" in chain.get_input_schema().model_json_schema()["properties"]


def _validate(kind: str, data: dict[str, Any]) -> None:
    """``data`` has the declared fields of ``kind`` (with their types) and no others."""
    declared = EVENT_DATA[kind]
    TypeAdapter(declared).validate_python(data)
    shapes = get_args(declared) or (declared,)  # ``paused``: a quorum pause or a review request
    assert any(set(data) <= shape.__required_keys__ | shape.__optional_keys__ for shape in shapes), (kind, sorted(data))


async def test_every_event_of_a_run_has_a_declared_kind_and_validates():
    events: list[RunEvent] = []
    await _federate(PromptedApp(lambda prompt: create_agent(_clerk(), tools=[], system_prompt=prompt)), on_event=events.append)
    kinds = {event.kind for event in events}
    assert kinds <= set(EVENT_KINDS)
    assert {"round_started", "local_step", "client_finished", "screened", "aggregated", "evaluated", "round_finished", "llm_call"} <= kinds
    for event in events:
        _validate(event.kind, event.data)
        assert event.to_json()


def test_event_data_declares_every_kind():
    assert set(EVENT_DATA) == set(EVENT_KINDS)
    with pytest.raises(ValueError):
        _validate("round_started", {"round": 1})  # clients missing
    with pytest.raises(AssertionError):
        _validate("round_started", {"round": 1, "clients": [], "surprise": 0})


async def test_the_library_prints_nothing_unless_asked(capsys):
    await _federate(PromptedApp(lambda prompt: create_agent(_clerk(), tools=[], system_prompt=prompt)))
    assert capsys.readouterr().out == ""


async def test_verbose_shows_the_live_view_and_still_calls_on_event(capsys):
    events: list[RunEvent] = []
    app = PromptedApp(lambda prompt: create_agent(_clerk(), tools=[], system_prompt=prompt))
    await _federate(app, run_id="shown", on_event=events.append, verbose=True)
    out = capsys.readouterr().out
    assert "starting run shown" in out
    assert "round 1: clients store-a, store-b" in out and "round 2:" in out
    assert "store-a uploaded its prompt" in out and "validation accuracy 1.000 (new best)" in out
    assert any(event.kind == "round_finished" for event in events)


