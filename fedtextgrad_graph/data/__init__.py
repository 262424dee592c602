"""Data: example files, a task's splits, and client partitions for in-process federations."""

from __future__ import annotations

from .loaders import DataError, Example, load_bbh, load_csv, load_examples, load_gsm8k, load_jsonl
from .partition import ClientData, FederatedData, build_federated_data
from .splits import TaskSplits, load_server_tasks, load_task, sample_examples

__all__ = [
    "ClientData",
    "DataError",
    "Example",
    "FederatedData",
    "TaskSplits",
    "build_federated_data",
    "load_bbh",
    "load_csv",
    "load_examples",
    "load_gsm8k",
    "load_jsonl",
    "load_server_tasks",
    "load_task",
    "sample_examples",
]
