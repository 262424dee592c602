"""The ``fedtextgrad-graph`` command line."""

from __future__ import annotations

from . import compare, flower  # noqa: F401  # registers the compare and Flower commands
from .app import app

__all__ = ["app"]
