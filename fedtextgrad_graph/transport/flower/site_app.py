"""The Flower ClientApp of a site: it answers the server's ``train``, ``evaluate`` and
``query.identify`` messages with the site's :class:`~fedtextgrad_graph.site.runner.SiteRunner`.

``fedtextgrad-graph site`` serves it from one long-lived process (see ``site_executor``).
A SuperNode that launches ClientApps itself finds the site through its node config:
``--node-config 'site-config="/path/to/site.toml"'`` (optionally ``model=...``, ``base-url=...``).
"""

from __future__ import annotations

import threading
from typing import TypeVar

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from ...site.config import load_site_config
from ...site.runner import RequestRefused, SiteRunner
from ...wire import EvaluateRequest, TrainRequest
from .messages import payload, reply, typed

__all__ = ["app", "serve_with"]

T = TypeVar("T")
_lock = threading.Lock()
_runner: SiteRunner | None = None


def serve_with(runner: SiteRunner | None) -> None:
    """Answer this process's messages with ``runner`` (``None``: load it from the node config)."""
    global _runner
    with _lock:
        _runner = runner


def _site(context: Context) -> SiteRunner:
    global _runner
    with _lock:
        if _runner is None:
            config = context.node_config
            path = config.get("site-config")
            if not path:
                raise RequestRefused(
                    "this SuperNode serves no site: start it with fedtextgrad-graph site SITE.toml, "
                    "or give flower-supernode --node-config 'site-config=\"/path/to/site.toml\"'"
                )
            site = load_site_config(str(path)).with_model_override(
                str(config["model"]) if config.get("model") else None,
                str(config["base-url"]) if config.get("base-url") else None,
            )
            _runner = SiteRunner(site)
        return _runner


app = ClientApp()


@app.query("identify")
def identify(message: Message, context: Context) -> Message:
    """Which client this site serves."""
    return reply(message, _site(context).identify())


@app.train()
def train(message: Message, context: Context) -> Message:
    """The round's local TextGrad steps; the reply carries the prompt and counts only."""
    return reply(message, dict(_site(context).train(_request(message, TrainRequest))))


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """Score a prompt on the site's own data; the reply carries counts only."""
    return reply(message, dict(_site(context).evaluate(_request(message, EvaluateRequest))))


def _request(message: Message, cls: type[T]) -> T:
    try:
        return typed(payload(message), cls)
    except ValueError as exc:
        raise RequestRefused(str(exc)) from None
