"""A worker process of the ``processes`` transport: serves a share of a run's clients.

    python -m fedtextgrad_graph.transport.processes.worker

Reads a :class:`~.frames.WorkerSetup` and then requests from stdin, and writes replies, its
LLM calls' records and the package's log records to what was stdout (stdout itself goes to
stderr, so a library's print cannot corrupt a frame). Requests run concurrently. The worker exits when the server closes
its stdin, or is gone; Ctrl-C at the terminal is the server's to handle, so it is ignored here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import cast

from ...gc_pacing import paced_collection
from ...models import LLMCallRecord, LLMGateway, ModelRouter, RetryPolicy, ThreadBridge
from ...site._textgrad import prefetch_textgrad
from ...wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest
from ..local import build_sites
from .frames import CallMade, Cancel, Failed, Logged, Replied, Request, WorkerSetup, encode, read_frame

logger = logging.getLogger(__name__)


class _Worker:
    """The sites of this worker's clients, and the requests they are serving."""

    def __init__(self, setup: WorkerSetup, out: asyncio.StreamWriter) -> None:
        config = setup.config
        router = ModelRouter.from_config(config, setup.models)
        router.limiters.share = setup.limits_share
        gateway = LLMGateway(
            max_concurrency=setup.max_concurrency,
            retry=RetryPolicy.from_config(config.models),
            timeout_s=config.models.timeout_s,
            on_call=self._record,
            limiters=router.limiters,
        )
        self.out = out
        self.bridge = ThreadBridge(setup.max_concurrency)
        try:
            self.sites = build_sites(config, setup.clients, models=router, gateway=gateway, bridge=self.bridge, scorers=setup.scorers)
        except BaseException:
            self.bridge.close()
            raise
        self.running: dict[int, asyncio.Task[None]] = {}
        prefetch_textgrad()

    def _record(self, record: LLMCallRecord) -> None:
        self.out.write(encode(CallMade(record)))

    async def serve(self, request: Request) -> None:
        try:
            site = self.sites[request.body["client_id"]]
            result: ClientUpdate | EvaluateResult
            if request.kind == "train":
                result = await site.train(cast(TrainRequest, request.body))
            else:
                result = await site.evaluate(cast(EvaluateRequest, request.body))
            reply: Replied | Failed = Replied(request.id, result)
        except Exception as exc:  # reported to the server, which drops the client
            logger.debug("request %d failed", request.id, exc_info=exc)
            reply = Failed(request.id, f"{type(exc).__name__}: {exc}")
        finally:
            self.running.pop(request.id, None)
        self.out.write(encode(reply))
        await self.out.drain()


class _LogFrames(logging.Handler):
    """Sends the package's log records to the server (from any thread: the loop writes them)."""

    def __init__(self, level: int, out: asyncio.StreamWriter) -> None:
        super().__init__(level)
        self.out = out
        self.loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        frame = encode(Logged(record.name, record.levelno, record.getMessage()))
        self.loop.call_soon_threadsafe(self.out.write, frame)


def _forward_logs(level: int, out: asyncio.StreamWriter) -> None:
    package = logging.getLogger("fedtextgrad_graph")
    package.setLevel(level)
    package.addHandler(_LogFrames(level, out))
    package.propagate = False


async def _main(frames_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))
    pipe, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(frames_fd, "wb", buffering=0))
    out = asyncio.StreamWriter(pipe, protocol, None, loop)
    try:
        setup = await read_frame(reader)
        if not isinstance(setup, WorkerSetup):
            return
        _forward_logs(setup.log_level, out)
        worker = _Worker(setup, out)
    except Exception as exc:  # noqa: BLE001 - the server reports it for each request of these clients
        out.write(encode(Failed(None, f"the worker process could not set up its clients: {type(exc).__name__}: {exc}")))
        await out.drain()
        return
    try:
        while (message := await read_frame(reader)) is not None:
            if isinstance(message, Request):
                worker.running[message.id] = asyncio.create_task(worker.serve(message))
            elif isinstance(message, Cancel) and message.id in worker.running:
                worker.running[message.id].cancel()
    finally:
        for task in worker.running.values():
            task.cancel()
        worker.bridge.close()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    frames_fd = os.dup(1)
    os.dup2(2, 1)
    with paced_collection():
        asyncio.run(_main(frames_fd))


if __name__ == "__main__":
    main()
