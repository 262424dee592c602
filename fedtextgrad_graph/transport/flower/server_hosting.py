"""This process as the ServerApp of a Flower run.

``fedtextgrad-graph run --superlink`` starts a run on the SuperLink (Control API, with a
FAB that holds only a ``pyproject.toml`` naming this package's apps) and executes its
ServerApp task here, through the SuperLink's Runtime API: the round graph, its checkpoint
and the live view stay in this process. The SuperLink must leave ServerApps to an outside
process (``--isolation process``), as ``fedtextgrad-graph superlink`` starts it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.cli.build import build_fab_from_files
from flwr.cli.cli_client_interceptor import CliClientHttpInterceptor
from flwr.common.constant import SubStatus
from flwr.common.serde import fab_to_proto, run_from_proto, user_config_to_proto
from flwr.proto.control_pb2 import RegisterNodeRequest, StartRunRequest  # pylint: disable=no-name-in-module
from flwr.proto.runtime_pb2 import (  # pylint: disable=no-name-in-module
    AcquireTaskRequest,
    PullTaskInputRequest,
    PushTaskOutputRequest,
)
from flwr.serverapp import Grid
from flwr.supercore.constant import TaskType
from flwr.supercore.control.control_http_client import ControlHttpClient
from flwr.supercore.fab import Fab
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor, SuperExecAuthHttpInterceptor
from flwr.supercore.primitives.asymmetric import public_key_to_bytes, uses_nist_ec_curve
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.task_identity import TaskIdentity
from flwr.superlink.grid import HttpGrid

from ...config import FlowerSettings
from ..base import TransportError

__all__ = ["APP_PYPROJECT", "FlowerConnectionError", "HostedRun", "load_site_key", "register_site"]

logger = logging.getLogger(__name__)

APP_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "fedtextgrad-sites"
version = "1.0.0"
description = "FedTextGrad rounds hosted by fedtextgrad-graph run --superlink"
license = "MIT"
dependencies = ["fedtextgrad-graph[flower]"]

[tool.flwr.app]
publisher = "fedtextgrad"

[tool.flwr.app.components]
serverapp = "fedtextgrad_graph.transport.flower.server_app:hosted_elsewhere"
clientapp = "fedtextgrad_graph.transport.flower.site_app:app"

[tool.flwr.app.config]
run-id = ""
"""
CLAIM_TIMEOUT_S = 15.0
_ACQUIRE_TASK = "/flwr.proto.Runtime/AcquireTask"  # the call the server secret signs


class FlowerConnectionError(TransportError):
    """The SuperLink cannot be reached, refused the run, or runs ServerApps itself."""


def _root_certificates(settings: FlowerSettings) -> bytes | None:
    if settings.insecure or settings.root_certificates is None:
        return None
    try:
        return Path(settings.root_certificates).read_bytes()
    except OSError as exc:
        raise FlowerConnectionError(f"transport.flower.root_certificates: cannot read {settings.root_certificates}: {exc}") from None


class HostedRun:
    """Start a Flower run and become its ServerApp (blocking calls: use one thread).

    Args:
        settings: The SuperLink's address and TLS settings.
        run_id: This package's run id, shown in the Flower run's config.
    """

    def __init__(self, settings: FlowerSettings, *, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.flower_run_id: int | None = None
        self._grid: HttpGrid | None = None
        self._heartbeat: HeartbeatSender | None = None

    def open(self) -> Grid:
        """Start the run and claim its ServerApp task; returns the run's Grid."""
        address = self.settings.superlink
        certificates = _root_certificates(self.settings)
        try:
            self.flower_run_id = self._start_run(address, certificates)
            token = self._claim(address, certificates)
        except httpx.HTTPError as exc:
            reason = _describe(exc)
            if self.settings.insecure and isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
                reason += " (a SuperLink with TLS drops plain HTTP: pass --root-certificates CA.pem instead of --insecure)"
            failed = "refused this run" if isinstance(exc, httpx.HTTPStatusError) else "could not be reached"
            raise FlowerConnectionError(f"the SuperLink at {address} {failed}: {reason}") from None
        grid = HttpGrid(address, self.settings.insecure, certificates, token=token)
        task_input = grid._runtime_client.PullTaskInput(PullTaskInputRequest())  # as flwr-serverapp does
        TaskIdentity.task_id = task_input.task_id
        TaskIdentity.run_id = task_input.run.run_id
        TaskIdentity.node_id = task_input.context.node_id
        grid.set_run(run_from_proto(task_input.run))
        self._heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(grid._runtime_client))
        self._heartbeat.start()
        self._grid = grid
        logger.info("hosting Flower run %s on %s", self.flower_run_id, address)
        return grid

    def close(self, *, completed: bool) -> None:
        """Report the run finished (or failed) and disconnect."""
        if self._grid is None:
            return
        status = SubStatus.COMPLETED if completed else SubStatus.FAILED
        try:
            self._grid._runtime_client.PushTaskOutput(PushTaskOutputRequest(sub_status=status, details=""))
        except httpx.HTTPError as exc:
            logger.warning("could not report the end of Flower run %s: %s", self.flower_run_id, _describe(exc))
        finally:
            if self._heartbeat is not None and self._heartbeat.is_running:
                self._heartbeat.stop()
            self._grid.close()
            self._grid = None

    def _start_run(self, address: str, certificates: bytes | None) -> int:
        fab_bytes, _ = build_fab_from_files({"pyproject.toml": APP_PYPROJECT.encode()})
        fab = Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})
        control = _control_client(self.settings, certificates)
        try:
            started = control.StartRun(
                StartRunRequest(fab=fab_to_proto(fab), override_config=user_config_to_proto({"run-id": self.run_id}), federation="")
            )
        finally:
            control.close()
        if not started.HasField("run_id"):
            raise FlowerConnectionError(f"the SuperLink at {address} did not start a run")
        return int(started.run_id)

    def _claim(self, address: str, certificates: bytes | None) -> str:
        interceptors: list[Any] = [RuntimeVersionHttpInterceptor(component_name="SuperExec")]
        if self.settings.server_secret is not None:
            try:
                secret = Path(self.settings.server_secret).read_bytes()
            except OSError as exc:
                raise FlowerConnectionError(f"--server-secret: cannot read {self.settings.server_secret} ({exc.strerror})") from None
            interceptors.append(SuperExecAuthHttpInterceptor(master_secret=secret, protected_methods=[_ACQUIRE_TASK]))
        runtime = RuntimeHttpClient.from_server_address(address, self.settings.insecure, certificates, interceptors)
        deadline = time.monotonic() + CLAIM_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                acquired = runtime.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.SERVER_APP]))
                if acquired.HasField("task") and acquired.token:
                    if acquired.task.run_id == self.flower_run_id:
                        return str(acquired.token)
                    # An older run whose host never claimed it: nothing else will run it here.
                    logger.warning("left abandoned Flower run %s to expire", acquired.task.run_id)
                    continue
                time.sleep(0.1)
        finally:
            runtime.close()
        raise FlowerConnectionError(
            f"the SuperLink at {address} did not hand this process the ServerApp of run {self.flower_run_id}: it "
            "probably launches ServerApps itself (flower-superlink --isolation subprocess). Start it with "
            "'fedtextgrad-graph superlink', or run the Flower app in integrations/flower with 'flwr run'"
        )


def _control_client(settings: FlowerSettings, certificates: bytes | None) -> ControlHttpClient:
    return ControlHttpClient.from_server_address(
        settings.superlink,
        settings.insecure,
        certificates,
        [CliClientHttpInterceptor(), RuntimeVersionHttpInterceptor(component_name="flwr CLI")],
    )


def load_site_key(public_key: Path) -> bytes:
    """A site's SuperNode public key (OpenSSH, NIST elliptic curve) as Flower stores it."""
    try:
        key = serialization.load_ssh_public_key(public_key.read_bytes())
    except (OSError, ValueError) as exc:
        raise FlowerConnectionError(f"{public_key}: not a readable OpenSSH public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not uses_nist_ec_curve(key):
        raise FlowerConnectionError(f"{public_key}: SuperNode keys are NIST elliptic-curve keys (ssh-keygen -t ecdsa -b 384)")
    return public_key_to_bytes(key)


def register_site(settings: FlowerSettings, client_id: str, public_key: bytes) -> int | None:
    """Register a site's SuperNode key on a SuperLink with node authentication, under its
    client id (the server then accepts that node only as that client). Returns its node id,
    or ``None`` if the SuperLink already holds the key (kept as it was registered)."""
    control = _control_client(settings, _root_certificates(settings))
    try:
        registered = control.RegisterNode(RegisterNodeRequest(public_key=public_key, name=client_id))
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == httpx.codes.PRECONDITION_FAILED:  # Flower: key already in use
            return None
        raise FlowerConnectionError(f"could not register {client_id}'s key on {settings.superlink}: {_describe(exc)}") from None
    except httpx.HTTPError as exc:
        raise FlowerConnectionError(f"could not register {client_id}'s key on {settings.superlink}: {_describe(exc)}") from None
    finally:
        control.close()
    return int(registered.node_id)


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        if exc.response.status_code == httpx.codes.UNAUTHORIZED and exc.request.url.path.endswith("/acquire-task"):
            return (
                "it runs rounds only for the holder of its server secret (pass --server-secret "
                "STATE_DIR/server.secret, written by fedtextgrad-graph superlink)"
            )
        return f"HTTP {exc.response.status_code} from {exc.request.url.path}"
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"its TLS certificate is not trusted ({text}); pass --root-certificates CA.pem"
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return f"TLS handshake failed ({text}); is the SuperLink started with --insecure?"
    return text
