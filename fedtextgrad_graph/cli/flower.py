"""Flower commands: ``superlink`` (the server's SuperLink) and ``site`` (one site's SuperNode
serving its client)."""

from __future__ import annotations

import logging
import re
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ..config import DEFAULT_SUPERLINK_PORT, ConfigError, FlowerSettings
from ..data import DataError
from .app import app
from .output import ensure_folder
from .view import console, errors, fail

__all__ = ["site", "superlink"]

_NODE_ID = re.compile(r"SuperNode ID: (\d+)")
_REFUSED = re.compile(r"\[code: 200[14]\]")  # Flower: node auth on, this key not registered


def _why_stopped(log_tail: str) -> str:
    if _REFUSED.search(log_tail):
        return (
            "the SuperLink refused this site: it accepts registered sites only, and this site's key is not "
            "registered (the server operator adds it with fedtextgrad-graph superlink --site-key CLIENT_ID=KEY.pub)"
        )
    return "the SuperNode stopped"


def _flower() -> None:
    try:
        import flwr  # noqa: F401
    except ImportError:
        fail("Flower is not installed: pip install 'fedtextgrad-graph[flower]'")


def _stop_on_sigterm(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)


@app.command(rich_help_panel="Flower")
def superlink(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for sites on other machines.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port for sites (Fleet API), runs (Control API) and ServerApps.")] = DEFAULT_SUPERLINK_PORT,
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Its database (node ids, runs) and log.")] = Path("superlink-state"),
    insecure: Annotated[bool, typer.Option("--insecure", help="Plain HTTP, no TLS (loopback and tests only).")] = False,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="TLS private key (PEM).")] = None,
    ssl_ca_certfile: Annotated[Path | None, typer.Option("--ssl-ca-certfile", help="CA certificate that signed it (PEM).")] = None,
    node_auth: Annotated[
        bool, typer.Option("--node-auth", help="Accept only sites whose SuperNode key is registered (needs TLS).")
    ] = False,
    site_key: Annotated[
        list[str] | None,
        typer.Option("--site-key", help="CLIENT_ID=PUBLIC_KEY_FILE: register a site's key (with --node-auth); repeatable."),
    ] = None,
) -> None:
    """Start a Flower SuperLink for fedtextgrad-graph runs (Ctrl-C stops it)."""
    _flower()
    from ..transport.flower.processes import FlowerProcess, TLSFiles, ensure_server_secret, superlink_command, wait_for_port
    from ..transport.flower.server_hosting import FlowerConnectionError, load_site_key, register_site

    tls_files = (ssl_certfile, ssl_keyfile, ssl_ca_certfile)
    if insecure and any(tls_files):
        fail("choose --insecure or the --ssl-* files, not both")
    if not insecure and not all(tls_files):
        fail("TLS needs --ssl-certfile, --ssl-keyfile and --ssl-ca-certfile (or --insecure for plain HTTP on loopback)")
    for path in filter(None, tls_files):
        if not path.is_file():
            fail(f"{path}: no such file")
    if node_auth and insecure:
        fail("--node-auth needs TLS: Flower authenticates sites only over TLS")
    keys: dict[str, bytes] = {}
    for entry in site_key or []:
        client_id, sep, key = entry.partition("=")
        if not sep or not client_id or not key:
            fail(f"--site-key {entry!r}: expected CLIENT_ID=PUBLIC_KEY_FILE")
        try:
            keys[client_id] = load_site_key(Path(key))
        except FlowerConnectionError as exc:
            fail(f"--site-key {client_id}: {exc}")
    if keys and not node_auth:
        fail("--site-key registers keys for --node-auth; add --node-auth")
    tls = None
    if not insecure:
        assert ssl_certfile and ssl_keyfile and ssl_ca_certfile  # all three, checked above
        tls = TLSFiles(ssl_certfile.resolve(), ssl_keyfile.resolve(), ssl_ca_certfile.resolve())
    ensure_folder(state_dir, "--state-dir")
    secret = ensure_server_secret(state_dir / "server.secret")
    command = superlink_command(
        host=host, port=port, database=state_dir / "superlink.db", server_secret=secret.resolve(), tls=tls, node_auth=node_auth
    )
    link = FlowerProcess(command, state_dir / "superlink.log", env={"FLWR_HOME": str((state_dir / "flwr").resolve())}).start()
    stop = threading.Event()
    _stop_on_sigterm(stop)
    try:
        if not wait_for_port(host, port, timeout_s=60, process=link.process):
            fail(f"the SuperLink did not start; its log ({link.log}) ends with:\n{link.tail()}", code=1)
        address = f"{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        settings = FlowerSettings(superlink=address, insecure=insecure, root_certificates=str(tls.ca_certfile) if tls else None)
        for client_id, public_key in keys.items():
            try:
                node_id = register_site(settings, client_id, public_key)
            except FlowerConnectionError as exc:
                fail(str(exc), code=1)
            if node_id is None:
                errors.print(
                    f"note: {client_id}'s key is already registered in {state_dir / 'superlink.db'} (kept as it was; "
                    "a key registered under another client id is refused as this one: use a fresh --state-dir)",
                    markup=False,
                    highlight=False,
                )
            else:
                console.print(f"registered site {client_id} (node {node_id})", markup=False, highlight=False)
        security = "insecure HTTP" if insecure else "TLS" + (", registered sites only" if node_auth else "")
        connect = "--insecure" if tls is None else f"--root-certificates {tls.ca_certfile}"
        console.print(
            f"SuperLink ready on {host}:{port} ({security}); database {state_dir / 'superlink.db'}, log {link.log}\n"
            f"  sites:  fedtextgrad-graph site SITE.toml --superlink {address} {connect}\n"
            f"  server: fedtextgrad-graph run CONFIG.toml --superlink {address} {connect} --server-secret {secret}\n"
            f"  ({secret} lets a process run rounds here: keep it to the server operator)",
            markup=False,
            highlight=False,
        )
        while link.running() and not stop.wait(0.5):
            pass
        if not stop.is_set():
            fail(f"the SuperLink stopped; its log ({link.log}) ends with:\n{link.tail()}", code=1)
    except KeyboardInterrupt:
        pass
    finally:
        link.stop()
    console.print("SuperLink stopped")


@app.command(rich_help_panel="Flower")
def site(
    site_file: Annotated[Path, typer.Argument(help="This site's SITE.toml: client id, task data, models.")],
    superlink: Annotated[str, typer.Option("--superlink", help="The server's SuperLink (HOST:PORT).")],
    insecure: Annotated[bool, typer.Option("--insecure", help="Plain HTTP to the SuperLink, no TLS (loopback and tests only).")] = False,
    root_certificates: Annotated[
        Path | None, typer.Option("--root-certificates", help="CA certificate (PEM) that signed the SuperLink's certificate (default: the system's trusted CAs).")
    ] = None,
    auth_key: Annotated[
        Path | None, typer.Option("--auth-key", help="This SuperNode's private key (ECDSA, PEM/OpenSSH), registered on the SuperLink.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model for every role at this site.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint for every role at this site.")] = None,
) -> None:
    """Run one site: a Flower SuperNode that trains this client on its own data (Ctrl-C stops it)."""
    _flower()
    from ..site.config import load_site_config
    from ..site.runner import SiteRunner
    from ..transport.flower import site_app
    from ..transport.flower.processes import FlowerProcess, free_port, supernode_command
    from ..transport.flower.site_executor import serve_clientapp_tasks

    if insecure and root_certificates:
        fail("choose --insecure (plain HTTP) or --root-certificates (TLS), not both")
    if insecure and auth_key:
        fail("--auth-key needs TLS: Flower authenticates sites only over TLS")
    for option, path in (("--root-certificates", root_certificates), ("--auth-key", auth_key)):
        if path is not None and not path.is_file():
            fail(f"{option}: {path} is not a file")
    try:
        config = load_site_config(site_file).with_model_override(model, base_url)
        runner = SiteRunner(config)
    except (ConfigError, DataError) as exc:
        fail(str(exc))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for name in ("fedtextgrad_graph.site", "fedtextgrad_graph.transport.flower.site_executor"):
        logging.getLogger(name).setLevel(logging.INFO)
    client_id, state = config.site.client_id, config.state_path
    runtime_port = free_port()
    command = supernode_command(
        superlink=superlink,
        runtime_port=runtime_port,
        insecure=insecure,
        root_certificates=root_certificates.resolve() if root_certificates else None,
        auth_key=auth_key.resolve() if auth_key else None,
    )
    node = FlowerProcess(command, state / "supernode.log", env={"FLWR_HOME": str((state / "flwr").resolve())}).start()
    site_app.serve_with(runner)
    stop = threading.Event()
    _stop_on_sigterm(stop)
    executor = threading.Thread(target=serve_clientapp_tasks, args=(f"127.0.0.1:{runtime_port}", stop), daemon=True)
    executor.start()
    console.print(
        f"site {client_id}: {len(runner.site.data.train)} training examples; connecting to the SuperLink at {superlink}"
        f" ({'insecure' if insecure else 'TLS'}); Flower's log: {node.log}",
        markup=False,
        highlight=False,
    )
    connected = False
    try:
        while not stop.wait(0.5):
            if not node.running():
                fail(f"site {client_id}: {_why_stopped(node.tail())}; its log ({node.log}) ends with:\n{node.tail()}", code=1)
            if not executor.is_alive():
                fail(f"site {client_id}: stopped serving messages (see the error above)", code=1)
            if not connected and (found := node.find(_NODE_ID)):
                connected = True
                console.print(f"site {client_id}: connected as node {found.group(1)}; serving rounds", markup=False, highlight=False)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        executor.join(timeout=30)
        node.stop()
        runner.close()
        site_app.serve_with(None)
    console.print(f"site {client_id} stopped", markup=False, highlight=False)
