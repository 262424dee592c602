"""Read the round graph's ``DeltaChannel``s from a checkpoint without building the graph."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

from ..state import delta_channels

__all__ = ["replay_delta_channels"]


async def replay_delta_channels(checkpointer: BaseCheckpointSaver[str], saved: CheckpointTuple) -> dict[str, Any]:
    """The values of the state's delta channels at ``saved``: each one's nearest stored value
    (a snapshot, or the whole value in a checkpoint written before the channel became a
    ``DeltaChannel``) with the ancestors' writes replayed on it through its reducer, as LangGraph
    does when it loads the checkpoint. Channels the run never wrote are left out."""
    channels = delta_channels()
    versions = saved.checkpoint["channel_versions"]
    names = [name for name in channels if name in versions]
    if not names:
        return {}
    histories = await checkpointer.aget_delta_channel_history(config=saved.config, channels=names)
    values: dict[str, Any] = {}
    for name in names:
        history = histories[name]
        stored = saved.checkpoint["channel_values"].get(name, history.get("seed"))
        channel = channels[name].from_checkpoint(stored)
        if name not in saved.checkpoint["channel_values"]:
            channel.replay_writes(history["writes"])
        values[name] = channel.get()
    return values
