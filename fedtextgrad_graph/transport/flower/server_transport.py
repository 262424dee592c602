"""The server side of Flower: the round graph reaches each site through a Flower Grid.

Every request is pushed at once and replies are pulled as they arrive, by one thread that
owns the (blocking) Grid, so all selected sites work in parallel. Sites are found by asking
each connected SuperNode which client it serves (``query.identify``); with SuperNode
authentication, a node's registered name must be the client id it claims.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from flwr.app import Message
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid

from ...config import FlowerSettings
from ...wire import ClientUpdate, EvaluateRequest, EvaluateResult, ReplyCount, TrainRequest
from ..base import ClientTransport, ClientUnavailable
from .messages import EVALUATE, IDENTIFY, TRAIN, payload, request, typed
from .server_hosting import HostedRun

if TYPE_CHECKING:
    from ...server.runtime import FederationRuntime

__all__ = ["FlowerTransport", "SiteError"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_UNREACHABLE = {ErrorCode.NODE_UNAVAILABLE, ErrorCode.MESSAGE_UNAVAILABLE, ErrorCode.REPLY_MESSAGE_UNAVAILABLE}
IDENTIFY_TIMEOUT_S = 60.0


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("could not list the sites yet: %s", task.exception())


class SiteError(RuntimeError):
    """A site answered with an error (its ClientApp raised, or crashed) or an invalid reply."""


def _checked(body: dict[str, Any], cls: type[T], who: str) -> T:
    """A site's reply as the wire type ``cls``, or :class:`SiteError` (the client is dropped)."""
    try:
        return typed(body, cls)
    except ValueError as exc:
        raise SiteError(f"site {who} sent an invalid reply: {exc}") from None


def _reply_counts(replies: Mapping[str, ReplyCount]) -> list[int]:
    """Every number in a reply's empty-reply counts, to check none is negative."""
    return [n for count in replies.values() for n in (count["calls"], count["empty"])]


def _token_counts(reply: ClientUpdate | EvaluateResult) -> list[int]:
    """The token counts a site reported (none from older sites), to check none is negative."""
    tokens = reply.get("llm_tokens")
    return [] if tokens is None else [tokens["input"], tokens["output"], tokens["calls_without_usage"]]


class FlowerTransport(ClientTransport):
    """Reaches Flower sites through a SuperLink.

    Args:
        settings: The SuperLink's address, TLS settings and how long to wait for sites.
        grid: The Grid of a running ServerApp (Flower's own ``flwr run``); without it,
            :meth:`start` starts a run on the SuperLink and hosts its ServerApp here.
        poll_s: Seconds between pulls of pending replies.
    """

    kind = "flower"

    def __init__(self, settings: FlowerSettings, *, grid: Grid | None = None, poll_s: float = 0.2) -> None:
        self.settings = settings
        self.poll_s = poll_s
        self._grid = grid
        self._host: HostedRun | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flower-grid")
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._nodes: dict[str, int] = {}  # client id -> node id
        self._known: dict[int, tuple[str | None, float]] = {}  # node id -> (client id or None if refused, when)
        self._refresh_lock: asyncio.Lock | None = None
        self._refreshed_at = 0.0
        self._warmup: asyncio.Task[None] | None = None
        self._identifying: dict[int, asyncio.Task[None]] = {}

    @classmethod
    def create(cls, runtime: FederationRuntime) -> FlowerTransport:
        return cls(runtime.config.transport.flower)

    async def start(self, *, run_id: str) -> None:
        """Host a run on the SuperLink unless a Grid was given, and start finding out which
        site each connected node serves (while the server does its own first work)."""
        if self._grid is None:
            self._host = HostedRun(self.settings, run_id=run_id)
            self._grid = await self._call(self._host.open)
        self._warmup = asyncio.create_task(self._refresh())
        self._warmup.add_done_callback(_log_failure)

    async def aclose(self) -> None:
        for task in (self._poller, self._warmup, *self._identifying.values()):
            if task is not None:
                task.cancel()
        if self._host is not None:
            await self._call(self._host.close, completed=True)
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def train(self, request: TrainRequest) -> ClientUpdate:
        who = request["client_id"]
        update = _checked(await self._ask(await self._node_of(who), TRAIN, dict(request), who), ClientUpdate, who)
        if (update["client_id"], update["round"]) != (who, request["round"]):
            raise SiteError(f"site {who} sent an update for client {update['client_id']!r} round {update['round']}")
        counts = [update["accepted"], update["rejected"], update["malformed"], update["llm_calls"], update["blocked"], update["redacted"]]
        counts += [update.get("unchanged", 0), *_reply_counts(update.get("empty_replies", {})), *_token_counts(update)]
        if min(counts) < 0:
            raise SiteError(f"site {who} sent an update with negative counts")
        return update

    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        who = request["client_id"]
        result = _checked(await self._ask(await self._node_of(who), EVALUATE, dict(request), who), EvaluateResult, who)
        if result["client_id"] != who:
            raise SiteError(f"site {who} sent a score for client {result['client_id']!r}")
        if not 0 <= result["correct"] <= result["total"] or min([result["llm_calls"], *_reply_counts(result.get("empty_replies", {})), *_token_counts(result)]) < 0:
            raise SiteError(f"site {who} sent an impossible score ({result['correct']} correct of {result['total']})")
        return result

    # -- the Grid, on its own thread ----------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    @property
    def grid(self) -> Grid:
        if self._grid is None:
            raise RuntimeError("the Flower transport is not started")
        return self._grid

    async def _ask(self, node_id: int, message_type: str, body: dict[str, Any], who: str) -> dict[str, Any]:
        """Send one message and wait for its reply's body."""
        [message_id] = await self._call(self.grid.push_messages, [request(node_id, message_type, body)])
        if not message_id:
            raise ClientUnavailable(f"the SuperLink refused the message to {who}")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._pull_replies())
        try:
            answer = await future
        except asyncio.CancelledError:
            # Given up on (a deadline): the node may be dead while still listed online, so
            # find the client's node again next time (a restarted site is a new node).
            self._forget(node_id)
            raise
        finally:
            self._pending.pop(message_id, None)
        if answer.has_error():
            error = answer.error
            if error.code in _UNREACHABLE:
                self._forget(node_id)
                raise ClientUnavailable(f"site {who} is gone ({error.reason})")
            raise SiteError(f"site {who}: {error.reason}")
        return payload(answer)

    async def _pull_replies(self) -> None:
        while self._pending:
            waiting = list(self._pending)
            try:
                replies = await self._call(self.grid.pull_messages, waiting)
            except Exception as exc:  # noqa: BLE001 - the SuperLink is gone: every waiting request fails
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(ClientUnavailable(f"lost the SuperLink at {self.settings.superlink}: {exc}"))
                return
            for reply in replies:
                waiter = self._pending.get(reply.metadata.reply_to_message_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(reply)
            await asyncio.sleep(self.poll_s)

    # -- which node serves which client ---------------------------------------------------

    async def _node_of(self, client_id: str) -> int:
        """The node of ``client_id``, waiting up to ``connect_timeout_s`` for it to connect.

        Nodes are identified in the background; a request waits for the identifications
        under way (a site that just restarted may be one of them) before it picks a node.
        """
        deadline = time.monotonic() + self.settings.connect_timeout_s
        announced = False
        while True:
            await self._refresh()
            if self._identifying:
                await asyncio.wait(self._identifying.values(), timeout=min(10.0, max(0.1, deadline - time.monotonic())))
            if client_id in self._nodes:
                return self._nodes[client_id]
            if time.monotonic() >= deadline:
                raise ClientUnavailable(
                    f"site {client_id} is not connected to the SuperLink at {self.settings.superlink} "
                    f"(waited {self.settings.connect_timeout_s:g} s)"
                )
            if not announced:
                self._emit("waiting_for_site", {"client_id": client_id})
                announced = True
            await asyncio.sleep(1.0)

    async def _refresh(self) -> None:
        """Look at the connected nodes (at most twice a second): forget those that left, and
        start identifying new ones (a node that did not answer is asked again later)."""
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            if time.monotonic() - self._refreshed_at < 0.5:
                return
            online = {node.node_id: node for node in await self._call(self.grid.get_nodes)}
            for client_id, node_id in list(self._nodes.items()):
                if node_id not in online:
                    del self._nodes[client_id]
            retry_before = time.monotonic() - IDENTIFY_TIMEOUT_S
            for node_id, info in online.items():
                known = self._known.get(node_id)
                if node_id in self._identifying or (known is not None and (known[0] is not None or known[1] > retry_before)):
                    continue
                registered = info.name if info.HasField("name") else ""
                self._identifying[node_id] = asyncio.create_task(self._identify(node_id, registered))
            self._refreshed_at = time.monotonic()

    async def _identify(self, node_id: int, registered: str) -> None:
        """Ask a node which client it serves and record the answer (the newest node of a
        client wins: a restarted site). With node authentication (``registered``), a node
        claiming another client id than its registered name is refused."""
        claimed: str | None = None
        try:
            body = await asyncio.wait_for(self._ask(node_id, IDENTIFY, {}, f"on node {node_id}"), IDENTIFY_TIMEOUT_S)
            claimed = body.get("client_id") if isinstance(body.get("client_id"), str) and body.get("client_id") else None
            if claimed is None:
                logger.warning("node %s sent no client id", node_id)
            elif registered and registered != claimed:
                logger.warning("node %s is registered as %r but claims client %r: refused", node_id, registered, claimed)
                claimed = None
        except Exception as exc:  # noqa: BLE001 - an unanswered or failed identification: asked again later
            logger.info("node %s did not say which site it is: %s", node_id, exc)
        finally:
            self._identifying.pop(node_id, None)
        self._known[node_id] = (claimed, time.monotonic())
        if claimed is not None:
            self._nodes[claimed] = node_id
            self._emit("site_connected", {"client_id": claimed, "node_id": node_id})

    def _forget(self, node_id: int) -> None:
        self._known.pop(node_id, None)
        for client_id, known in list(self._nodes.items()):
            if known == node_id:
                del self._nodes[client_id]

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        logger.info("%s: %s", kind, data)
        if self.on_event is not None:
            self.on_event(kind, data)
