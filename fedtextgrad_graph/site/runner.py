"""One site, served from any thread: built from its SITE.toml, with an event loop of its own,
its last result per run, and a log of its LLM calls (metadata only, never content)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel

from ..data import ClientData, load_task
from ..gc_pacing import paced_collection
from ..models import LLMCallRecord, LLMGateway, ModelRouter, RetryPolicy, ThreadBridge
from ..wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest
from ._textgrad import prefetch_textgrad
from .cache import ResultCache
from .config import SiteConfig
from .context import SITE_ROLES, Site

__all__ = ["RequestRefused", "SiteRunner"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class RequestRefused(ValueError):
    """A request this site does not serve (another client or task, a malformed message).
    Its text is the only error text a site sends back: other failures may quote its data."""


class SiteRunner:
    """Builds a site from its config and serves training and evaluation requests.

    Data files, model settings and TextGrad are loaded now, so a bad SITE.toml fails before
    the site connects anywhere. Requests are blocking calls, safe from any thread.

    Args:
        config: The site's configuration.
        models: Ready chat models by role, replacing the configured ones (tests, embedding).
    """

    def __init__(self, config: SiteConfig, *, models: Mapping[str, BaseChatModel] | None = None) -> None:
        self.config = config
        task_name = config.site.task or "task"
        splits = load_task(task_name, config.task, config.data_dir)
        router = ModelRouter(config.models, given=models)
        router.build_all(SITE_ROLES, client_ids=[None])
        prefetch_textgrad()
        limit = config.site.max_concurrency
        self._serving = {"run_id": "", "request": ""}  # what the logged LLM calls are for
        state = config.state_path
        state.mkdir(parents=True, exist_ok=True)
        self.events_path = state / "events.jsonl"
        self._events = self.events_path.open("a", encoding="utf-8")
        self.cache = ResultCache(state / "results", settings=config.guard.model_dump_json())
        gateway = LLMGateway(
            max_concurrency=limit,
            retry=RetryPolicy.from_config(config.models),
            timeout_s=config.models.timeout_s,
            on_call=self._log_call,
            limiters=router.limiters,
        )
        self.site = Site(
            client_id=config.site.client_id,
            data=ClientData(task_name, splits.train, splits.validation, splits.test),
            task=config.task,
            models=router,
            gateway=gateway,
            bridge=ThreadBridge(limit),
            guard_config=config.guard,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fedtextgrad-site", daemon=True)
        self._thread.start()

    @property
    def client_id(self) -> str:
        return self.config.site.client_id

    def identify(self) -> dict[str, Any]:
        """Who this site is: its client id and (if declared) its task."""
        return {"client_id": self.client_id, "task": self.config.site.task}

    def train(self, request: TrainRequest) -> ClientUpdate:
        """Run the round's local steps, or return the update already made for this request."""
        self._check(request["client_id"], request["task"])
        where = f"run {request['run_id']} round {request['round']}"
        cached = self.cache.get(request)
        if cached is not None:
            logger.info("%s: sent the update it had finished before (no new LLM calls)", where)
            return cached
        self._serving = {"run_id": request["run_id"], "request": "train"}
        started = time.perf_counter()
        update = self._wait(self.site.train(request))
        self.cache.put(request, update)
        logger.info(
            "%s: uploaded its prompt (%d accepted, %d rejected, %d malformed, %d blocked, %d redacted, %d unchanged; "
            "%d LLM calls, %.1f s)",
            where,
            update["accepted"],
            update["rejected"],
            update["malformed"],
            update["blocked"],
            update["redacted"],
            update.get("unchanged", 0),
            update["llm_calls"],
            time.perf_counter() - started,
        )
        return update

    def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        """Score a prompt on this site's own validation or test split; only counts leave."""
        self._check(request["client_id"], None)
        # A sample (the server's upload screen) is logged apart from the round's validation.
        kind = f"{request['split']} sample" if "sample" in request else request["split"]
        self._serving = {"run_id": request["run_id"], "request": kind}
        result = self._wait(self.site.evaluate(request))
        when = "the final test" if request["round"] is None else f"round {request['round']}"
        logger.info("run %s %s: scored a prompt on its %s data (%d examples)", request["run_id"], when, request["split"], result["total"])
        return result

    def close(self) -> None:
        """Stop serving: the event loop, its thread, the TextGrad worker threads, the call log."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
        self.site.bridge.close()
        self._events.close()

    def _check(self, client_id: str, task: str | None) -> None:
        if client_id != self.client_id:
            raise RequestRefused(f"this site serves client {self.client_id!r}, not {client_id!r}")
        declared = self.config.site.task
        if task is not None and declared is not None and task != declared:
            raise RequestRefused(f"site {self.client_id!r} holds task {declared!r}; the server asked for {task!r}")

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        with paced_collection():
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _log_call(self, record: LLMCallRecord) -> None:
        line = {"time": time.time(), "pid": os.getpid(), "event": "llm_call", **self._serving, **record.__dict__}
        self._events.write(json.dumps(line) + "\n")
        self._events.flush()
