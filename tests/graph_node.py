"""Running library code the round graph calls from its nodes, in a LangGraph node of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from langgraph.func import entrypoint

T = TypeVar("T")


async def in_graph_node(run: Callable[[], Awaitable[T]]) -> T:
    """``await run()`` inside a LangGraph run, as a graph node would (scoring runs its shards as
    LangGraph tasks, which exist only there)."""

    @entrypoint()
    async def node(_: bool) -> Any:
        return await run()

    result: T = await node.ainvoke(True)
    return result
