"""``GET /metrics`` in plain HTTP on its own port, with a bounded number of connections.

prometheus_client's ``start_http_server`` starts a thread per connection and reads from it with
no timeout: a client that connects and sends nothing keeps a thread for good, and any pod that
reaches the port can add them until guard's process can start no more threads (the admission
port's worker threads are the same process's) or runs out of memory. This listener serves
prometheus_client's WSGI app with at most ``max_connections`` connections at once (one more is
closed at once: Prometheus retries on its next scrape) and drops one that sends nothing for
``read_timeout_seconds``.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

MAX_CONNECTIONS = 8
READ_TIMEOUT_SECONDS = 10.0


class _Handler(WSGIRequestHandler):
    timeout = READ_TIMEOUT_SECONDS  # socketserver.StreamRequestHandler: settimeout on the socket

    def log_message(self, format: str, *args: Any) -> None:
        """No access log (as prometheus_client's handler)."""


class _BoundedServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # over the bound: closed, no thread started
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def start(
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    max_connections: int = MAX_CONNECTIONS,
    read_timeout_seconds: float = READ_TIMEOUT_SECONDS,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` on ``host:port`` from a daemon thread; raises OSError if it cannot bind."""
    # the family of the address ("::" needs AF_INET6), as prometheus_client picks it
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    server_class = type(
        "MetricsServer",
        (_BoundedServer,),
        {"address_family": family, "max_connections": max_connections},
    )
    handler_class = type("MetricsHandler", (_Handler,), {"timeout": read_timeout_seconds})
    app = make_wsgi_app(registry)
    server: WSGIServer = make_server(str(sockaddr[0]), port, app, server_class, handler_class)
    thread = threading.Thread(target=server.serve_forever, name="guard-metrics", daemon=True)
    thread.start()
    return server, thread
