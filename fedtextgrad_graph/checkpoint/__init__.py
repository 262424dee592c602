"""Checkpointers: one function from a checkpoint URL to a LangGraph saver (SQLite, Redis, memory),
and the run lease kept next to the checkpoints (one writer per run)."""

from __future__ import annotations

from .lease import LeaseHolder, RunLease, RunLeaseHeld, RunLeaseLost, hold_run_lease, register_run_lease
from .urls import CheckpointError, create_checkpointer, redacted_url, sqlite_url

__all__ = [
    "CheckpointError",
    "LeaseHolder",
    "RunLease",
    "RunLeaseHeld",
    "RunLeaseLost",
    "create_checkpointer",
    "hold_run_lease",
    "redacted_url",
    "register_run_lease",
    "sqlite_url",
]
