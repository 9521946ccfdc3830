"""Large AdmissionReviews held at once share a budget (four maximal reviews): a client that sends
many large bodies, each finished within the request deadline, made guard hold them all (and the
several times larger parsed reviews) until its memory ran out, and the API server's failurePolicy
decided every admission. Past the budget a large request is refused with 503 at once; small
ones (nearly every admission) are never counted."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import pytest

from guard.testing.admission import FakeVerifier, admission_review, pod
from webhook.app import LARGE_BODIES_IN_FLIGHT
from webhook.server import WebhookServer

SIGNED = "registry.local/models/llama:v1"
# the start_server fixture (tests/webhook/conftest.py)
StartServer = Callable[..., tuple[WebhookServer, httpx.Client]]
WAIT_SECONDS = 20.0  # a guard against a hang, never a timing assertion
_JSON = "application/json"
DECLARED = 3_000_000  # under maxBodyBytes (3 MiB): each one is a request guard must take


@pytest.fixture
def server(start_server: StartServer) -> WebhookServer:
    verifier = FakeVerifier()
    verifier.add(SIGNED)
    started, _client = start_server(verifier, request_deadline_seconds=WAIT_SECONDS)
    return started


def _large_request_begun(server: WebhookServer, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A connection that has sent the headers of a 3 MB review and its first 256 KiB and more."""
    sock = context.wrap_socket(
        socket.create_connection((server.host, server.port)), server_hostname=server.host
    )
    sock.settimeout(WAIT_SECONDS)
    sock.sendall(
        b"POST /validate HTTP/1.1\r\nHost: guard\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {DECLARED}\r\n\r\n".encode()
        + b"{"
        + b" " * 300_000
    )
    return sock


def _answer(sock: ssl.SSLSocket) -> bytes:
    """The server's answer up to the end of its headers and body (or of the stream)."""
    received = b""
    while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def _large_review() -> bytes:
    """A valid review of a signed pod padded past 256 KiB (an annotation), under the limit."""
    obj = pod(SIGNED)
    obj["metadata"]["annotations"] = {"example.com/padding": "x" * 400_000}
    return json.dumps(admission_review(obj)).encode()


def test_past_the_budget_a_large_review_is_refused_and_small_ones_are_answered(
    server: WebhookServer, client_context: ssl.SSLContext
) -> None:
    with ExitStack() as held:
        for _ in range(LARGE_BODIES_IN_FLIGHT):  # the budget, taken by bodies not yet finished
            held.enter_context(_large_request_begun(server, client_context))
        with _large_request_begun(server, client_context) as one_more:
            answer = _answer(one_more)  # before: nothing (the body was buffered like the others)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"guard is busy" in answer and b"allowed" not in answer
        with httpx.Client(base_url=server.url, verify=client_context, timeout=WAIT_SECONDS) as client:
            small = client.post("/validate", json=admission_review(pod(SIGNED)))
            assert small.status_code == 200 and small.json()["response"]["allowed"] is True
            metrics = client.get("/metrics").text
            assert 'guard_admission_malformed_requests_total{reason="busy"} 1.0' in metrics
    # the held requests gone (once the server has seen them go), their share is free again
    with httpx.Client(base_url=server.url, verify=client_context, timeout=WAIT_SECONDS) as client:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            large = client.post("/validate", content=_large_review(), headers={"Content-Type": _JSON})
            if large.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert large.status_code == 200, large.text[:300]
        assert large.json()["response"]["allowed"] is True
