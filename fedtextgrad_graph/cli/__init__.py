"""The ``fedtextgrad-graph`` command line."""

from __future__ import annotations

from . import flower  # noqa: F401  # registers the Flower commands
from .app import app

__all__ = ["app"]
