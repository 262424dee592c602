"""Checkpointers: one function from a checkpoint URL to a LangGraph saver (SQLite, Redis, memory)."""

from __future__ import annotations

from .urls import CheckpointError, create_checkpointer, redacted_url, sqlite_url

__all__ = ["CheckpointError", "create_checkpointer", "redacted_url", "sqlite_url"]
