"""ServerApp: the FedTextGrad round graph over the sites connected to the SuperLink.

It reads the server's TOML named by the run config, checkpoints every step (resumable with
``--run-config 'run-id="..." resume=true'``) and writes the run folder on this machine.
"""

from fedtextgrad_graph.transport.flower.server_app import app

__all__ = ["app"]
