"""The wire types in Flower messages: one JSON payload in a ``ConfigRecord``.

Message types: ``train`` (a :class:`TrainRequest`, answered by a :class:`ClientUpdate`),
``evaluate`` (an :class:`EvaluateRequest`, answered by an :class:`EvaluateResult`) and
``query.identify`` (answered by the site's client id). Only prompts, ids and counts travel.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flwr.app import ConfigRecord, Message, RecordDict
from pydantic import TypeAdapter, ValidationError

from ...config import format_validation_error

__all__ = ["EVALUATE", "IDENTIFY", "TRAIN", "WIRE_VERSION", "payload", "reply", "request", "typed"]

TRAIN = "train"
EVALUATE = "evaluate"
IDENTIFY = "query.identify"
WIRE_VERSION = 1
_RECORD = "fedtextgrad"
T = TypeVar("T")


def request(node_id: int, message_type: str, body: dict[str, Any], *, ttl: float | None = None) -> Message:
    """A message to the site on ``node_id``."""
    content = RecordDict({_RECORD: ConfigRecord({"version": WIRE_VERSION, "json": json.dumps(body)})})
    return Message(content, dst_node_id=node_id, message_type=message_type, ttl=ttl)


def reply(to: Message, body: dict[str, Any]) -> Message:
    """The site's answer to ``to``."""
    content = RecordDict({_RECORD: ConfigRecord({"version": WIRE_VERSION, "json": json.dumps(body)})})
    return Message(content, reply_to=to)


def payload(message: Message) -> dict[str, Any]:
    """The JSON body of a message from this package (``ValueError`` for anything else)."""
    try:
        record = message.content[_RECORD]
        version, text = record["version"], record["json"]
    except (KeyError, TypeError):
        raise ValueError("not a fedtextgrad-graph message") from None
    if version != WIRE_VERSION:
        raise ValueError(f"wire format version {version!r}; this site speaks version {WIRE_VERSION}")
    body = json.loads(str(text))
    if not isinstance(body, dict):
        raise ValueError("malformed fedtextgrad-graph message")  # noqa: TRY004 - as every other bad message
    return body


def typed(body: dict[str, Any], cls: type[T]) -> T:
    """``body`` as the wire type ``cls`` (a TypedDict): every field present with its exact type,
    unknown keys dropped. ``ValueError`` names the first wrong field."""
    try:
        validated: T = _adapter(cls).validate_python(body, strict=True)
    except ValidationError as exc:
        raise ValueError(format_validation_error(f"malformed {cls.__name__}", exc).splitlines()[0]) from None
    return validated


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)  # built once per type: building one is slow
    return adapter
