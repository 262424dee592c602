"""What an LLM call is for (run, round, local step), and the LangChain config it is made with.

The graph nodes and the client subgraph open a :func:`call_context`; the gateway turns it, with
the call's role and client, into LangChain ``metadata`` and ``tags`` on every call
(:func:`traced_config`). The context follows its work across tasks and TextGrad's worker threads
(context variables are copied there), as LangChain's own parent config does: a user's callbacks
(LangSmith tracing, a handler passed to ``run_federated``) see every call nested under the graph
node that made it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config

__all__ = ["TRACE_TAG", "call_context", "traced_config"]

TRACE_TAG = "fedtextgrad"
"""The tag every LLM call of a run carries."""

_CONTEXT: ContextVar[Mapping[str, Any] | None] = ContextVar("fedtextgrad_call_context", default=None)


@contextmanager
def call_context(**fields: Any) -> Iterator[None]:
    """Within this block, LLM calls are for ``fields`` (``run_id``, ``local_step``...), added
    to the fields of the blocks around it."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def traced_config(*, role: str, client_id: str | None, round: int | None) -> RunnableConfig:
    """The config of one LLM call: the caller's LangChain config (the graph node's, with the
    user's callbacks, tags and metadata) plus this call's metadata (``fedtextgrad_run_id``,
    ``role``, ``client_id``, ``round``; in a client's local step ``local_step`` and, for its
    TextGrad calls, ``purpose``: ``answer``, ``gradient`` or ``update``), tags
    (``fedtextgrad``, ``role:<role>``, ``client:<id>``, ``round:<n>``, ``purpose:<p>``) and
    run name (``fedtextgrad:<role>``)."""
    parent = ensure_config()
    fields = _CONTEXT.get() or {}
    run_id = fields.get("run_id") or parent.get("configurable", {}).get("thread_id")
    metadata: dict[str, Any] = {"fedtextgrad_run_id": run_id, "role": role, "client_id": client_id, "round": round}
    tags = [TRACE_TAG, f"role:{role}"]
    if client_id is not None:
        tags.append(f"client:{client_id}")
    if round is not None:
        tags.append(f"round:{round}")
    for optional in ("local_step", "purpose"):
        if optional in fields:
            metadata[optional] = fields[optional]
    if "purpose" in fields:
        tags.append(f"purpose:{fields['purpose']}")
    # ``ensure_config`` returned a fresh copy (metadata, tags and callbacks copied): ours go
    # straight in, merged as ``merge_configs`` would, without its two more copies per call.
    parent["metadata"] = {**parent.get("metadata", {}), **metadata}
    parent["tags"] = sorted(set(parent.get("tags", [])) | set(tags))
    parent["run_name"] = f"fedtextgrad:{role}"
    return parent
