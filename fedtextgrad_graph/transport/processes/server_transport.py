"""The server side of the ``processes`` transport: clients in worker processes on this machine.

The clients are dealt round-robin to ``[transport.processes] workers`` processes (default: one
per CPU this process may use), each with its clients' private data, its share of the run's
``max_concurrency`` and of each endpoint's limits, and the run's config to build their models.
Workers start with the run and import while the server does its own first work; requests are
written at once and answered as they finish, so every worker trains its clients concurrently.
A worker that dies takes its requests with it (those clients are dropped for the round, under
the quorum) and is started again for its clients' next request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
from asyncio.subprocess import PIPE, Process
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from ...config import ConfigError, FedTextGradConfig
from ...data import FederatedData, build_federated_data
from ...models import LLMGateway
from ...site import SITE_ROLES
from ...wire import ClientUpdate, EvaluateRequest, EvaluateResult, TrainRequest
from ..base import ClientTransport, ClientUnavailable, TransportError
from ..local import client_shares
from .frames import CallMade, Cancel, Failed, Logged, Replied, Request, WorkerSetup, encode, read_frame

if TYPE_CHECKING:
    from ...server.runtime import FederationRuntime

__all__ = ["ProcessTransport", "WorkerError", "available_cpus"]

logger = logging.getLogger(__name__)
WORKER_MODULE = "fedtextgrad_graph.transport.processes.worker"
STOP_WAIT_S = 10.0
FRAME_LIMIT = 2**26  # bytes a reader buffers: a reply is far smaller


class WorkerError(RuntimeError):
    """A client's request raised in its worker process (the client is dropped for the round)."""


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _log(message: Logged) -> None:
    """A worker's log record, logged here as the in-process transport would have."""
    record = logging.makeLogRecord({"name": message.name, "levelno": message.level, "levelname": logging.getLevelName(message.level), "msg": message.message})
    target = logging.getLogger(message.name)
    if target.isEnabledFor(message.level):
        target.handle(record)


@dataclass
class _Worker:
    """One worker process and the requests it has not answered yet."""

    clients: list[str]
    setup: bytes
    process: Process | None = None
    reader: asyncio.Task[None] | None = None
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    failure: str | None = None  # why it could not set up its clients (not retried)

    @property
    def alive(self) -> bool:
        return self.reader is not None and not self.reader.done()


class ProcessTransport(ClientTransport):
    """Reaches clients in worker processes of this machine, so a round's CPU work (LangChain,
    TextGrad, the HTTP clients) runs on every core, not on the server's one.

    Args:
        workers: Each worker's clients and its encoded :class:`~.frames.WorkerSetup`.
        gateway: The run's gateway; its ``on_call`` also hears the workers' LLM calls.
    """

    kind = "processes"

    def __init__(self, workers: list[tuple[list[str], bytes]], gateway: LLMGateway) -> None:
        self._workers = [_Worker(clients, setup) for clients, setup in workers]
        self._worker_of = {cid: worker for worker in self._workers for cid in worker.clients}
        self._gateway = gateway
        self._ids = itertools.count()

    @classmethod
    def load_data(cls, config: FedTextGradConfig) -> FederatedData:
        """Every task's splits, and each client's private share (sent to its worker)."""
        return build_federated_data(config)

    @classmethod
    def create(cls, runtime: FederationRuntime) -> ProcessTransport:
        """Deal the clients to the workers; bad model settings, and given models or metrics
        that cannot be sent to another process, fail now (:class:`ConfigError`)."""
        config = runtime.config
        shares = client_shares(runtime)
        runtime.models.build_all(SITE_ROLES, client_ids=list(shares))
        count = min(config.transport.processes.workers or available_cpus(), len(shares))
        limit = config.run.max_concurrency
        models = {key: model for key, model in runtime.models.given.items() if key.rpartition(".")[2] in SITE_ROLES}
        level = logging.getLogger("fedtextgrad_graph").getEffectiveLevel()
        workers = []
        for i in range(count):
            clients = list(shares)[i::count]
            setup = WorkerSetup(
                config=config,
                clients={cid: shares[cid] for cid in clients},
                max_concurrency=max(1, limit // count + (i < limit % count)),
                limits_share=1 / count,
                models=models,
                scorers=dict(runtime.scorers),
                log_level=level,
            )
            try:
                workers.append((clients, encode(setup)))
            except Exception as exc:  # noqa: BLE001 - pickle raises many kinds
                raise ConfigError(
                    f"transport.kind = 'processes': a model or metric given to the run cannot be sent to a worker process "
                    f"({type(exc).__name__}: {exc}); configure it in [models], or use transport 'local'"
                ) from None
        return cls(workers, runtime.gateway)

    async def start(self, *, run_id: str) -> None:
        """Start every worker (they import and set up while the server goes on)."""
        for worker in self._workers:
            await self._spawn(worker)

    @property
    def worker_processes(self) -> list[tuple[int | None, list[str]]]:
        """Each worker's process id (``None`` before it starts) and the clients it serves."""
        return [(worker.process.pid if worker.process else None, list(worker.clients)) for worker in self._workers]

    async def train(self, request: TrainRequest) -> ClientUpdate:
        return cast(ClientUpdate, await self._ask("train", request))

    async def evaluate(self, request: EvaluateRequest) -> EvaluateResult:
        return cast(EvaluateResult, await self._ask("evaluate", request))

    async def aclose(self) -> None:
        """Close each worker's stdin (it finishes and exits), then stop those still running."""
        for worker in self._workers:
            if worker.process is not None and worker.process.stdin is not None:
                worker.process.stdin.close()
        for worker in self._workers:
            if worker.process is None or worker.process.returncode is not None:
                continue
            try:
                await asyncio.wait_for(worker.process.wait(), STOP_WAIT_S)
            except TimeoutError:
                logger.warning("worker process %d did not stop in %g s: killing it", worker.process.pid, STOP_WAIT_S)
                worker.process.kill()
                await worker.process.wait()
        for worker in self._workers:
            if worker.reader is not None:
                await asyncio.gather(worker.reader, return_exceptions=True)

    async def _spawn(self, worker: _Worker) -> None:
        # The worker imports what this process can: the given models' and metrics' modules.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        try:
            process = await asyncio.create_subprocess_exec(sys.executable, "-m", WORKER_MODULE, stdin=PIPE, stdout=PIPE, env=env, limit=FRAME_LIMIT)
        except OSError as exc:
            raise TransportError(f"could not start a worker process: {exc}") from None
        assert process.stdin is not None  # PIPE
        process.stdin.write(worker.setup)
        worker.process = process
        worker.reader = asyncio.create_task(self._read(worker, process))

    async def _read(self, worker: _Worker, process: Process) -> None:
        """Hand each reply to its request, each call record to the run; at the worker's exit,
        fail what it had not answered."""
        assert process.stdout is not None  # PIPE
        try:
            while (message := await read_frame(process.stdout)) is not None:
                if isinstance(message, CallMade):
                    if self._gateway.on_call is not None:
                        self._gateway.on_call(message.record)
                elif isinstance(message, Logged):
                    _log(message)
                elif isinstance(message, Replied):
                    self._settle(worker, message.id, result=message.result)
                elif isinstance(message, Failed) and message.id is not None:
                    self._settle(worker, message.id, error=WorkerError(message.error))
                elif isinstance(message, Failed):
                    worker.failure = message.error
        except Exception as exc:  # noqa: BLE001 - an unreadable frame, or the run's call log raised
            logger.warning("stopping worker process %d: %s: %s", process.pid, type(exc).__name__, exc)
            process.kill()
        code = await process.wait()
        reason = worker.failure or f"its worker process (pid {process.pid}) exited with code {code}"
        for request_id in list(worker.pending):
            self._settle(worker, request_id, error=TransportError(reason) if worker.failure else ClientUnavailable(reason))

    @staticmethod
    def _settle(worker: _Worker, request_id: int, *, result: Any = None, error: Exception | None = None) -> None:
        future = worker.pending.pop(request_id, None)
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    async def _ask(self, kind: Literal["train", "evaluate"], body: TrainRequest | EvaluateRequest) -> Any:
        client_id = body["client_id"]
        worker = self._worker_of.get(client_id)
        if worker is None:
            raise ClientUnavailable(f"no client {client_id!r} in this run's worker processes")
        if worker.failure is not None:
            raise TransportError(worker.failure)
        if not worker.alive:
            await self._spawn(worker)
        process = worker.process
        assert process is not None and process.stdin is not None  # spawned above
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        try:
            process.stdin.write(encode(Request(request_id, kind, body)))
            return await future
        except asyncio.CancelledError:
            if worker.alive and not process.stdin.is_closing():
                process.stdin.write(encode(Cancel(request_id)))
            raise
        finally:
            worker.pending.pop(request_id, None)
