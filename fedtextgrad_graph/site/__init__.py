"""The site side: one client with its private data, its models and the local TextGrad steps."""

from __future__ import annotations

from .client import build_client_graph, minibatch_indices, proximal_accepts, run_client
from .context import SITE_ROLES, Site

__all__ = ["SITE_ROLES", "Site", "build_client_graph", "minibatch_indices", "proximal_accepts", "run_client"]
