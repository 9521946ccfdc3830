"""The plain-HTTP metrics listener (``guard serve --metrics-port``) under clients that connect
and send nothing: prometheus_client's server started a thread per connection and waited on it
for good, so a pod that reached the port (no NetworkPolicy by default) could grow guard's
process by a thread per connection until it could start no more (the admission port's worker
threads with it) or ran out of memory. The listener serves a bounded number of connections at
once, closes the others at once, and drops an idle one after its read timeout."""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from guard.admission.metrics import AdmissionMetrics
from webhook.server import start_metrics_listener

CONNECTIONS = 40
WAIT_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def listener() -> Iterator[int]:
    port = _free_port()
    stop: Callable[[], None] = start_metrics_listener(AdmissionMetrics(), "127.0.0.1", port)
    try:
        yield port
    finally:
        stop()


def _scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=WAIT_SECONDS) as response:
        body: bytes = response.read()
        return body


def test_idle_connections_cannot_grow_the_process_by_a_thread_each(listener: int) -> None:
    assert b"guard_admission_requests_in_flight" in _scrape(listener)
    threads_before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", listener)) for _ in range(CONNECTIONS)]
    try:
        # the listener closes what it does not serve: wait until most connections are closed
        closed: set[socket.socket] = set()
        deadline = time.monotonic() + WAIT_SECONDS
        while len(closed) < CONNECTIONS // 2 and time.monotonic() < deadline:
            readable, _, _ = select.select([s for s in idle if s not in closed], [], [], 0.2)
            closed.update(s for s in readable if s.recv(1) == b"")
        assert len(closed) >= CONNECTIONS // 2, f"{len(closed)} of {CONNECTIONS} idle connections closed"
        assert threading.active_count() - threads_before < CONNECTIONS // 2
    finally:
        for sock in idle:
            sock.close()
    # the idle ones gone (their threads see the end of stream and free their slots), Prometheus
    # is served again
    assert b"guard_admission_requests_in_flight" in _scrape_once_served(listener)


def _scrape_once_served(port: int) -> bytes:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return _scrape(port)
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
