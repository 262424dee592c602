"""A real Flower federation for the tests: the package's own ``superlink`` and ``site``
commands in subprocesses on free loopback ports, each site in a folder of its own, and
the TLS certificates and SuperNode keys made here (never checked in)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fedtextgrad_graph.transport.flower.processes import TLSFiles

from ..conftest import counting_examples, wait_for
from .cli import COMMAND, cli_env
from .redis_server import free_port


def make_tls(directory: Path) -> TLSFiles:
    """A CA and a certificate for 127.0.0.1/localhost signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedtextgrad test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = TLSFiles(certfile=directory / "server.pem", keyfile=directory / "server.key", ca_certfile=directory / "ca.pem")
    tls.ca_certfile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tls


def make_node_key(directory: Path, name: str) -> tuple[Path, Path]:
    """A SuperNode key pair as ``ssh-keygen -t ecdsa -b 384`` writes it: (private, public)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private, public = directory / name, directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    return private, public


SITE_TEMPLATE = """
[site]
client_id = "{client_id}"
max_concurrency = 8

[task]
format = "bbh"
path = "data.json"
split = {{ train = [0, 12], validation = [12, 18], test = [18, 24] }}

[models]
model = "{model}"
base_url = "{base_url}"
"""

SERVER_TEMPLATE = """
[run]
name = "flower-test"

[tasks.counting]

[federation]
clients = [{clients}]
task = "counting"
quorum = {quorum}
{deadline}

[client]
local_steps = 1
batch_size = 3

[aggregation]
strategy = "concat"

[evaluation]
mode = "federated"

[convergence]
max_rounds = {rounds}
unchanged_rounds = 1000

[models]
model = "simulated"

[transport.flower]
connect_timeout_s = 90
"""


def write_site(directory: Path, client_id: str, base_url: str, *, seed: int, model: str = "openai:site-model") -> Path:
    """A site folder with its own data file and site.toml; returns the site.toml."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data.json").write_text(json.dumps({"examples": counting_examples(24, seed)}), encoding="utf-8")
    path = directory / "site.toml"
    path.write_text(SITE_TEMPLATE.format(client_id=client_id, base_url=base_url, model=model), encoding="utf-8")
    return path


def write_server(directory: Path, client_ids: Sequence[str], *, rounds: int = 2, quorum: float = 0.5, deadline_s: float | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "server.toml"
    path.write_text(
        SERVER_TEMPLATE.format(
            clients=", ".join(f'{{ id = "{cid}" }}' for cid in client_ids),
            quorum=quorum,
            rounds=rounds,
            deadline="" if deadline_s is None else f"client_deadline_s = {deadline_s}",
        ),
        encoding="utf-8",
    )
    return path


class Process:
    """A ``fedtextgrad-graph`` command (or ``command``) in its own process group, output to a
    log file."""

    def __init__(
        self, args: Sequence[str | Path], *, cwd: Path, log: Path, command: Sequence[str] = COMMAND, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        self._file = log.open("ab")
        self.popen = subprocess.Popen(
            [*command, *map(str, args)],
            cwd=cwd,
            env={**cli_env(), **(env or {})},
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for_output(self, text: str, timeout_s: float) -> None:
        wait_for(lambda: text in self.output() or self.popen.poll() is not None, timeout_s, f"{text!r} in {self.log}")
        assert text in self.output(), self.output()

    def kill(self) -> None:
        """SIGKILL the whole process group (the command and the Flower process it started)."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)
        self._file.close()

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; SIGKILL if it does not exit."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(30)
        self._file.close()


def _new_log(path: Path) -> Path:
    """``path``, or ``name-2.out``, ``name-3.out``...: a restarted process writes a log of its own."""
    n = 1
    while path.exists():
        n += 1
        path = path.with_name(f"{path.name.split('.')[0].rsplit('-', 1)[0]}-{n}.out")
    return path


class Federation:
    """A SuperLink and sites, started by the tests and stopped by them alone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.processes: list[Process] = []
        self.link: Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def server_secret(self) -> Path:
        """What ``superlink`` wrote: ``run`` needs it to run rounds there."""
        return self.root / "superlink" / "server.secret"

    def start_superlink(self, *args: str | Path) -> Process:
        state = self.root / "superlink"
        self.link = Process(
            ["superlink", "--port", str(self.port), "--state-dir", state, *args], cwd=self.root, log=_new_log(self.root / "superlink.out")
        )
        self.processes.append(self.link)
        self.link.wait_for_output("SuperLink ready", 60)
        return self.link

    def start_site(self, site_toml: Path, *args: str | Path, connect: bool = True) -> Process:
        log = _new_log(site_toml.parent / "site.out")
        process = Process(["site", site_toml, "--superlink", self.address, *args], cwd=site_toml.parent, log=log)
        self.processes.append(process)
        if connect:
            process.wait_for_output("serving rounds", 90)
        return process

    def start_flower_superlink(self, flwr_home: Path) -> Process:
        """Flower's own SuperLink, as a team that deploys Flower its own way starts it: it
        launches each run's ServerApp itself (``--isolation subprocess``, the default)."""
        self.link = Process(
            ["--insecure", "--port", str(self.port), "--database", self.root / "flower-superlink.db",
             "--disable-runtime-dependency-installation"],
            cwd=self.root,
            log=self.root / "superlink.out",
            command=[str(Path(sys.executable).parent / "flower-superlink")],
            # it starts flower-superexec from PATH: this environment's, even when not activated
            env={"FLWR_HOME": str(flwr_home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        )  # fmt: skip
        self.processes.append(self.link)
        self.link.wait_for_output("Uvicorn running", 60)
        return self.link

    def start_sites(self, site_tomls: Sequence[Path], *args: str | Path) -> list[Process]:
        """Start several sites at once (their start-up is seconds of imports each)."""
        processes = [self.start_site(toml, *args, connect=False) for toml in site_tomls]
        for process in processes:
            process.wait_for_output("serving rounds", 120)
        return processes

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def site_calls(site_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The LLM calls a site logged for ``run_id`` (metadata only)."""
    path = site_dir / ".fedtextgrad-site" / site_dir.name / "events.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.endswith("}")]
    return [e for e in lines if e["event"] == "llm_call" and e["run_id"] == run_id]

