"""The site side: one client with its private data, its models and the local TextGrad steps."""

from __future__ import annotations

from .client import build_client_graph, minibatch_indices, proximal_accepts, run_client
from .config import SiteConfig, load_site_config
from .context import SITE_ROLES, Site
from .runner import RequestRefused, SiteRunner

__all__ = [
    "SITE_ROLES",
    "RequestRefused",
    "Site",
    "SiteConfig",
    "SiteRunner",
    "build_client_graph",
    "load_site_config",
    "minibatch_indices",
    "proximal_accepts",
    "run_client",
]
