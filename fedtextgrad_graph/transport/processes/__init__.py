"""Clients in worker processes on the server's machine: every core works on the clients.

Server side: ``server_transport`` (starts the workers and carries requests to them). Worker
side: ``worker`` (``python -m fedtextgrad_graph.transport.processes.worker``: a share of the
clients' sites). Both: ``frames`` (what crosses the pipes).
"""
