"""Network misbehaviour for admission tests: an address where nothing listens (a registry that is
down). A registry that does not answer in time: ``guard.testing.faultproxy.FaultProxy`` in
``stall`` mode."""

from __future__ import annotations

import socket


def refused_address(host: str = "127.0.0.1") -> str:
    """``host:port`` where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return f"{host}:{port}"
