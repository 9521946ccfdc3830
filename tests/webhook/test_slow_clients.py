"""Clients that open a connection and never finish a request: each is closed at the server's
request deadline (the webhook's timeoutSeconds), so a pod that can reach guard's Service cannot
hold connections, or bodies of up to maxBodyBytes buffered, until guard runs out of file
descriptors or memory (and the API server's failurePolicy decides every admission)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import httpx
import pytest

from guard.testing.admission import FakeVerifier, admission_review, pod
from webhook.server import WebhookServer

SIGNED = "registry.local/models/llama:v1"
# the start_server fixture (tests/webhook/conftest.py)
StartServer = Callable[..., tuple[WebhookServer, httpx.Client]]
# how long the test waits for the server to close a stalled connection: far above the deadline
WAIT_SECONDS = 20.0


@pytest.fixture
def server(start_server: StartServer) -> WebhookServer:
    verifier = FakeVerifier()
    verifier.add(SIGNED)
    started, _client = start_server(verifier, request_deadline_seconds=0.5)
    return started


def _connect(server: WebhookServer, context: ssl.SSLContext) -> ssl.SSLSocket:
    sock = context.wrap_socket(
        socket.create_connection((server.host, server.port)), server_hostname=server.host
    )
    sock.settimeout(WAIT_SECONDS)
    return sock


def _closed_by_server(sock: ssl.SSLSocket) -> bytes:
    """What the server sends before it closes the connection (recv until end of stream); a
    socket.timeout here means the server kept the stalled connection open."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


STALLED = {
    "no request after the TLS handshake": b"",
    "headers never finished": b"POST /validate HTTP/1.1\r\nHost: guard\r\n",
    "body never finished": (
        b"POST /validate HTTP/1.1\r\nHost: guard\r\nContent-Type: application/json\r\n"
        b"Content-Length: 3000000\r\n\r\n" + b"{" + b" " * 100_000
    ),
}


@pytest.mark.parametrize("sent", STALLED.values(), ids=STALLED.keys())
def test_a_stalled_connection_is_closed_at_the_deadline(
    server: WebhookServer, client_context: ssl.SSLContext, sent: bytes
) -> None:
    with _connect(server, client_context) as sock:
        sock.sendall(sent)
        received = _closed_by_server(sock)
    assert b"allowed" not in received


def test_a_prompt_client_keeps_its_connection_and_is_answered(
    server: WebhookServer, client_context: ssl.SSLContext
) -> None:
    with httpx.Client(base_url=server.url, verify=client_context, timeout=WAIT_SECONDS) as client:
        for _ in range(3):  # one kept-alive connection, several requests
            response = client.post("/validate", json=admission_review(pod(SIGNED)))
            assert response.status_code == 200
            assert response.json()["response"]["allowed"] is True
