"""The site side: one client with its private data, its models and the local TextGrad steps."""

from __future__ import annotations

from .client import build_client_graph, minibatch_indices, proximal_accepts, run_client
from .config import SiteConfig, load_site_config
from .context import SITE_ROLES, Site
from .guard import Finding, UploadCheck, UploadGuard, register_check
from .runner import RequestRefused, SiteRunner

__all__ = [
    "SITE_ROLES",
    "Finding",
    "RequestRefused",
    "Site",
    "SiteConfig",
    "SiteRunner",
    "UploadCheck",
    "UploadGuard",
    "build_client_graph",
    "load_site_config",
    "minibatch_indices",
    "proximal_accepts",
    "register_check",
    "run_client",
]
