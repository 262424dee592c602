"""Flower's own processes, started with this package's defaults: a SuperLink for the server,
a SuperNode for each site. Children die with the process that started them (Linux)."""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = [
    "FlowerProcess",
    "TLSFiles",
    "ensure_server_secret",
    "free_port",
    "superlink_command",
    "supernode_command",
    "wait_for_port",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class TLSFiles:
    """A SuperLink's TLS certificate, key and the CA that signed the certificate."""

    certfile: Path
    keyfile: Path
    ca_certfile: Path


def _executable(name: str) -> str:
    """A Flower command from this interpreter's environment (PATH may not have it)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: install the flower extra (pip install 'fedtextgrad-graph[flower]')")
    return found


def superlink_command(
    *, host: str, port: int, database: Path, server_secret: Path, tls: TLSFiles | None, node_auth: bool
) -> list[str]:
    """``flower-superlink`` leaving ServerApps to ``fedtextgrad-graph run`` (process isolation)
    that holds ``server_secret``, with a database file (a restarted SuperLink keeps its node ids
    and runs) and no runtime installation of app dependencies."""
    command = [
        _executable("flower-superlink"),
        "--isolation", "process",
        "--superexec-auth-secret-file", str(server_secret),
        "--database", str(database),
        "--disable-runtime-dependency-installation",
        "--host", host,
        "--port", str(port),
    ]  # fmt: skip
    if tls is None:
        command.append("--insecure")
    else:
        command += ["--ssl-certfile", str(tls.certfile), "--ssl-keyfile", str(tls.keyfile), "--ssl-ca-certfile", str(tls.ca_certfile)]
    if node_auth:
        command.append("--enable-supernode-auth")
    return command


def supernode_command(
    *,
    superlink: str,
    runtime_port: int,
    insecure: bool,
    root_certificates: Path | None,
    auth_key: Path | None,
) -> list[str]:
    """``flower-supernode`` whose ClientApp tasks the site process executes itself. TLS unless
    ``insecure``: with ``root_certificates``, or else the system's trusted CAs."""
    command = [
        _executable("flower-supernode"),
        "--isolation", "process",
        "--superlink", superlink,
        "--port", str(runtime_port),
    ]  # fmt: skip
    if insecure:
        command.append("--insecure")
    elif root_certificates is not None:
        command += ["--root-certificates", str(root_certificates)]
    if auth_key is not None:
        command += ["--auth-supernode-private-key", str(auth_key)]
    return command


def ensure_server_secret(path: Path) -> Path:
    """The SuperLink's server secret at ``path``, made (random, owner-only) if it is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(32))
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Whether ``host:port`` accepts connections within ``timeout_s`` (False at once if
    ``process`` exits first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with socket.create_connection((host if host not in ("0.0.0.0", "::") else "127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (Linux prctl)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class FlowerProcess:
    """A Flower command running as this process's child, its output in ``log``."""

    command: Sequence[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = None
    _log_start: int = 0  # the log is appended to: this process's output starts here

    def start(self) -> FlowerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        self._log_start = self._log_file.tell()
        self.process = subprocess.Popen(
            list(self.command),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},  # its log, line by line
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What this process wrote to its log so far, without colour codes."""
        try:
            with self.log.open("rb") as log:
                log.seek(self._log_start)
                return _ANSI.sub("", log.read().decode("utf-8", errors="replace"))
        except OSError:
            return ""

    def find(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The first match of ``pattern`` in its output so far."""
        return pattern.search(self.output())

    def tail(self, lines: int = 12) -> str:
        """The last lines of its output, without the web server's routine INFO lines."""
        kept = [line for line in self.output().splitlines() if line.strip() and not line.startswith("INFO")]
        return "\n".join(kept[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        if self._log_file is not None:
            self._log_file.close()
