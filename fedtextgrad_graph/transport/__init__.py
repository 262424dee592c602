"""Transports: how the round graph reaches its clients (in-process, or Flower sites)."""

from __future__ import annotations

from .base import ClientTransport, ClientUnavailable, TransportError, register_transport, transport_class, transport_kinds
from .local import LocalTransport

__all__ = [
    "ClientTransport",
    "ClientUnavailable",
    "LocalTransport",
    "TransportError",
    "register_transport",
    "transport_class",
    "transport_kinds",
]
