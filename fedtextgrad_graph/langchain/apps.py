"""Federate the system prompt of a LangChain app you already have (a chain or an agent).

Each client's forward pass runs *your* runnable with the candidate system prompt injected;
TextGrad critiques its answers and rewrites the prompt, and the server merges the clients'
prompts as usual. Only the prompt leaves a client.

    app = PromptedApp(lambda prompt: create_agent(model, tools, system_prompt=prompt))
    state = await federate_app(app, clients={"store-a": (train_a, val_a), ...},
                               initial_prompt="You are a stock clerk...", optimizer=model)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver

from ..config import parse_config
from ..data import ClientData, Example, FederatedData, TaskSplits
from ..metrics import Scorer
from ..runs import RunEvent, run_federated

__all__ = ["PromptedApp", "federate_app", "messages_input", "output_text"]

_TASK = "app"


def messages_input(question: str) -> dict[str, Any]:
    """The input of an agent (``create_agent``) or any messages-state graph: one user message."""
    return {"messages": [HumanMessage(question)]}


def output_text(output: Any) -> str:
    """The answer text of common LangChain outputs: a string, a message, an agent state with
    ``messages``, or a dict with ``output``/``answer``."""
    if isinstance(output, str):
        return str(output)  # exact str: parsers may return str subclasses
    if isinstance(output, BaseMessage):
        return str(output.text)
    if isinstance(output, Mapping):
        if output.get("messages"):
            return output_text(output["messages"][-1])
        for key in ("output", "answer"):
            if key in output:
                return output_text(output[key])
    return str(output)


class PromptedApp:
    """A LangChain runnable whose system prompt is the variable being optimized.

    Args:
        factory: Builds your runnable for a system prompt, e.g.
            ``lambda prompt: create_agent(model, tools, system_prompt=prompt)``.
        to_input: Turns an example's input text into the runnable's input
            (default: one user message, for agents).
        to_text: Turns the runnable's output into answer text (default: :func:`output_text`).
        name: Shown in results and logs.
    """

    def __init__(
        self,
        factory: Callable[[str], Runnable[Any, Any]],
        *,
        to_input: Callable[[str], Any] = messages_input,
        to_text: Callable[[Any], str] = output_text,
        name: str = "app",
    ) -> None:
        self._factory = functools.lru_cache(maxsize=64)(factory)
        self._to_input = to_input
        self._to_text = to_text
        self.name = name
        self._template: tuple[Runnable[Any, Any], str, str] | None = None  # from_runnable: runnable, prompt_key, input_key

    @classmethod
    def from_runnable(
        cls,
        runnable: Runnable[Any, Any],
        *,
        prompt_key: str = "system_prompt",
        input_key: str = "input",
        to_text: Callable[[Any], str] = output_text,
        name: str = "app",
    ) -> PromptedApp:
        """An app whose runnable takes the system prompt as an input variable, e.g. a chain
        starting with ``ChatPromptTemplate([("system", "{system_prompt}"), ("human", "{input}")])``.

        ``input_key`` defaults to ``input``, LangChain's usual name for the user's message and
        the variable :func:`~fedtextgrad_graph.as_chat_prompt` produces; examples' ``input``
        fills it. :func:`federate_app` checks the runnable's variables before any model call.
        """

        def factory(prompt: str) -> Runnable[Any, Any]:
            return RunnableLambda(lambda inputs: {**inputs, prompt_key: prompt}) | runnable

        app = cls(factory, to_input=lambda question: {input_key: question}, to_text=to_text, name=name)
        app._template = (runnable, prompt_key, input_key)
        return app

    def check_input(self, system_prompt: str) -> None:
        """Check, without calling it, that the runnable takes the input this app gives it.

        Raises:
            ValueError: The runnable's input schema requires variables the app does not fill
                (or, from :meth:`from_runnable`, has no variable for the system prompt); the
                message names the expected and the found variables.
        """
        if self._template is not None:
            runnable, prompt_key, input_key = self._template
            given = {prompt_key, input_key}
        else:
            runnable, prompt_key, input_key = self._factory(system_prompt), None, None
            sample = self._to_input("")
            if not isinstance(sample, Mapping):
                return  # a plain value: nothing to compare by name
            given = set(sample)
        schema = runnable.get_input_jsonschema()
        found, required = set(schema.get("properties", {})), set(schema.get("required", ()))
        unfilled = required - given
        if not unfilled and (prompt_key is None or not found or prompt_key in found):
            return
        if prompt_key is None:
            hint = f"pass to_input= a function that returns {sorted(required)}"
        elif prompt_key not in found:
            hint = f"put {{{prompt_key}}} in its system message, or pass prompt_key= the variable it uses"
        else:
            hint = f"pass input_key= the variable of the user's message ({' or '.join(sorted(unfilled))}), or rename it {{{input_key}}}"
        raise ValueError(f"app {self.name!r}: the runnable's input variables are {sorted(found)}, but it is given {sorted(given)}; {hint}")

    async def answer(self, system_prompt: str, question: str) -> str:
        """Run the app once with ``system_prompt`` injected; return its answer text."""
        output = await self._factory(system_prompt).ainvoke(self._to_input(question))
        return self._to_text(output)


def _examples(items: Sequence[Example | tuple[str, str] | Mapping[str, str]], where: str) -> list[Example]:
    examples = []
    for i, item in enumerate(items):
        if isinstance(item, Example):
            examples.append(item)
        elif isinstance(item, Mapping) and "input" in item and "target" in item:
            examples.append(Example(str(item["input"]), str(item["target"])))
        elif isinstance(item, tuple) and len(item) == 2:
            examples.append(Example(str(item[0]), str(item[1])))
        else:
            raise ValueError(f"{where}[{i}]: expected an Example, an (input, target) pair or a dict with input and target")
    return examples


def _scorer(metric: Callable[[str, str], bool]) -> Scorer:
    async def score(question: str, prediction: str, target: str) -> bool:
        return bool(metric(prediction, target))

    return score


async def federate_app(
    app: PromptedApp,
    clients: Mapping[str, tuple[Sequence[Any], Sequence[Any]]],
    *,
    initial_prompt: str,
    optimizer: BaseChatModel,
    aggregator: BaseChatModel | None = None,
    judge: BaseChatModel | None = None,
    metric: str | Callable[[str, str], bool] = "exact",
    format_instruction: str = "",
    test: Sequence[Any] = (),
    rounds: int = 3,
    local_steps: int = 2,
    batch_size: int = 3,
    strategy: str = "uid",
    sampling_rate: float = 1.0,
    evaluation: str = "federated",
    max_concurrency: int = 256,
    max_retries: int = 8,
    seed: int = 0,
    run_id: str | None = None,
    checkpointer: BaseCheckpointSaver[str] | None = None,
    resume: bool = False,
    on_event: Callable[[RunEvent], None] | None = None,
    verbose: bool = False,
    callbacks: Callbacks = None,
    config: RunnableConfig | None = None,
) -> dict[str, Any]:
    """Federate ``app``'s system prompt over clients' private examples; return the final state.

    Args:
        app: Your runnable, with the system prompt injected (see :class:`PromptedApp`).
        clients: ``{client_id: (train_examples, validation_examples)}``; examples are
            :class:`~fedtextgrad_graph.Example`, ``(input, target)`` pairs or dicts.
        initial_prompt: The prompt your app runs with today.
        optimizer: Chat model that writes feedback and rewrites prompts.
        aggregator: Chat model that merges prompts (default: ``optimizer``).
        judge: Chat model for ``metric="judge"``.
        metric: ``"exact"``, ``"last_number"``, ``"judge"``, or ``fn(prediction, target) -> bool``.
        format_instruction: An output-format sentence every merged prompt must keep last.
        test: Server-held examples to score the best prompt on at the end.
        evaluation: ``"federated"`` (clients score their own validation data) or ``"server"``.
        run_id, checkpointer, resume, on_event, verbose, callbacks: As in
            :func:`~fedtextgrad_graph.run_federated` (``verbose=True`` shows the run live;
            ``callbacks`` reach the graph, every model call and every run of ``app``, each
            with its role, client, round and local step: docs/tracing.md).
        config: A LangChain ``RunnableConfig`` (tags, metadata, callbacks) for the same
            (``run_federated``'s ``runnable_config``).

    Raises:
        ValueError: Bad clients or examples, or ``app``'s runnable does not take the input
            variables it is given (see :meth:`PromptedApp.check_input`); raised before any
            model is called.

    Other keyword arguments mirror the ``[client]``, ``[aggregation]``, ``[convergence]`` and
    ``[models]`` (``max_retries``) config fields.
    """
    if not clients:
        raise ValueError("clients: at least one client is needed")
    app.check_input(initial_prompt)
    body = initial_prompt.strip()
    if format_instruction and body.endswith(format_instruction.strip()):
        body = body[: -len(format_instruction.strip())].strip()
    settings = parse_config(
        {
            "run": {"name": app.name, "seed": seed, "max_concurrency": max_concurrency},
            "prompt": {"instruction": body, "format_instruction": format_instruction},
            "tasks": {_TASK: {"metric": metric if isinstance(metric, str) else "exact"}},
            "federation": {"clients": [{"id": cid} for cid in clients], "sampling_rate": sampling_rate},
            "client": {"local_steps": local_steps, "batch_size": batch_size},
            "aggregation": {"strategy": strategy},
            "evaluation": {"mode": evaluation, "test": bool(test)},
            "convergence": {"max_rounds": rounds},
            "models": {"max_retries": max_retries},
        },
        source="federate_app",
    )
    data = {cid: ClientData(_TASK, _examples(train, f"clients[{cid!r}] train"), _examples(val, f"clients[{cid!r}] validation")) for cid, (train, val) in clients.items()}
    if evaluation == "federated" and any(not c.validation for c in data.values()):
        raise ValueError("clients: federated evaluation needs validation examples on every client")
    if not any(c.validation for c in data.values()):
        raise ValueError("clients: give at least one validation example")
    splits = TaskSplits(
        train=[ex for c in data.values() for ex in c.train],
        validation=[ex for c in data.values() for ex in c.validation],
        test=_examples(test, "test"),
    )
    models: dict[str, Any] = {"task": app, "optimizer": optimizer, "aggregator": aggregator or optimizer, "judge": judge or optimizer}
    return await run_federated(
        settings,
        run_id=run_id,
        checkpointer=checkpointer,
        models=models,
        data=FederatedData(clients=data, tasks={_TASK: splits}),
        scorers=None if isinstance(metric, str) else {_TASK: _scorer(metric)},
        resume=resume,
        on_event=on_event,
        verbose=verbose,
        callbacks=callbacks,
        runnable_config=config,
    )
