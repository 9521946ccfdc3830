"""AdmissionReviews POSTed over real TLS to a running webhook (fake registry and policies)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import trustme

from guard.testing.admission import FakePolicy, FakeVerifier, admission_review, pod
from webhook.server import WebhookServer

SIGNED = "registry.local/models/llama:v1"
UNSIGNED = "registry.local/models/unsigned:v1"
TAMPERED = "registry.local/models/evil:v1"

# the start_server fixture (tests/webhook/conftest.py)
StartServer = Callable[..., tuple[WebhookServer, httpx.Client]]


def fake_registry() -> FakeVerifier:
    verifier = FakeVerifier()
    verifier.add(SIGNED)
    verifier.add(UNSIGNED, signer=None)
    verifier.add(TAMPERED, tampered=True)
    return verifier


def post(client: httpx.Client, review: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/validate", json=review)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    result: dict[str, Any] = body["response"]
    return result


def test_allowed_echoes_uid_and_annotates(start_server: StartServer) -> None:
    _, client = start_server(fake_registry())
    review = admission_review(pod(SIGNED), uid="0f6a2c4e-1111-4222-8333-944455556666")
    answer = post(client, review)
    assert answer["uid"] == "0f6a2c4e-1111-4222-8333-944455556666"
    assert answer["allowed"] is True
    notes = answer["auditAnnotations"]
    assert isinstance(notes, dict) and "decision-id" in notes
    verified = json.loads(notes["verified"])
    assert verified[0]["reference"] == SIGNED and verified[0]["digest"].startswith("sha256:")
    assert verified[0]["signers"] == ["ci@example.com"]
    # a tag was resolved: the warning names the digest
    assert any(verified[0]["digest"] in w for w in answer["warnings"])


def test_denied_with_the_reason(start_server: StartServer) -> None:
    _, client = start_server(fake_registry())
    for image, reason in ((UNSIGNED, "no signature"), (TAMPERED, "does not match its content")):
        answer = post(client, admission_review(pod(image)))
        assert answer["allowed"] is False
        status = answer["status"]
        assert isinstance(status, dict) and status["code"] == 403
        assert reason in status["message"] and image in status["message"]


def test_warned_by_a_warn_mode_policy(start_server: StartServer) -> None:
    from guard.admission.ports import Violation

    policy = FakePolicy(
        violations=(Violation("supply_chain.sbom", "sbom", "no SBOM attached", action="warn"),)
    )
    verifier = fake_registry()
    _, client = start_server(verifier, policy)
    digest = verifier.tags[SIGNED]
    answer = post(client, admission_review(pod(f"registry.local/models/llama@{digest}")))
    assert answer["allowed"] is True
    assert answer["warnings"] == ["[supply_chain.sbom] no SBOM attached"]


def test_dry_run_decides_and_is_marked(start_server: StartServer) -> None:
    _, client = start_server(fake_registry())
    answer = post(client, admission_review(pod(UNSIGNED), dry_run=True))
    assert answer["allowed"] is False
    assert answer["auditAnnotations"]["dry-run"] == "true"


def test_slow_registry_is_denied_within_the_deadline(start_server: StartServer) -> None:
    gate = threading.Event()
    verifier = fake_registry()
    verifier.gate = gate
    verifier.gate_timeout = 20
    try:
        _, client = start_server(verifier, timeout_seconds=1.0, deadline_margin_seconds=0.6)
        answer = post(client, admission_review(pod(SIGNED)))
    finally:
        gate.set()
    assert answer["allowed"] is False
    assert "deadline" in answer["status"]["message"]


def test_registry_down_fails_closed(start_server: StartServer) -> None:
    verifier = fake_registry()
    verifier.down = True
    _, client = start_server(verifier)
    answer = post(client, admission_review(pod(SIGNED)))
    assert answer["allowed"] is False
    assert "connection refused" in answer["status"]["message"]


def test_malformed_bodies_get_400_never_an_allow(start_server: StartServer) -> None:
    _, client = start_server(fake_registry())
    bad = [
        b"",
        b"not json",
        b"[]",
        json.dumps(
            {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}
        ).encode(),
        json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
    ]
    missing_uid = admission_review(pod(SIGNED))
    del missing_uid["request"]["uid"]
    bad.append(json.dumps(missing_uid).encode())
    for body in bad:
        response = client.post("/validate", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, body
        assert "AdmissionReview" in response.json()["error"]
        assert "allowed" not in response.text
    assert "request.uid" in response.json()["error"]


def test_oversize_body_gets_413(start_server: StartServer) -> None:
    _, client = start_server(fake_registry(), max_body_bytes=10_000)
    obj = pod(SIGNED)
    obj["metadata"]["annotations"] = {"filler": "x" * 20_000}
    response = client.post("/validate", json=admission_review(obj))
    assert response.status_code == 413
    assert "at most 10000 bytes" in response.json()["error"]

    def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while streaming
        yield b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"x": "'
        for _ in range(20):
            yield b"y" * 1000

    response = client.post("/validate", content=chunks())
    assert response.status_code == 413

    # a body under the limit in many small chunks is read whole, and answered
    body = json.dumps(admission_review(pod(SIGNED))).encode()
    response = client.post("/validate", content=(body[i : i + 7] for i in range(0, len(body), 7)))
    assert response.status_code == 200 and response.json()["response"]["allowed"] is True


def test_unknown_kind_is_denied(start_server: StartServer) -> None:
    _, client = start_server(fake_registry())
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    answer = post(client, admission_review(widget))
    assert answer["allowed"] is False
    assert "Widget.example.com" in answer["status"]["message"]


def test_health_readiness_and_metrics(start_server: StartServer) -> None:
    _, client = start_server(fake_registry())
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").text == "ready\n"
    post(client, admission_review(pod(SIGNED)))
    post(client, admission_review(pod(SIGNED)))
    client.post("/validate", content=b"junk")
    text = client.get("/metrics").text
    assert 'guard_admission_request_duration_seconds_count{decision="warned",kind="Pod"} 2.0' in text
    assert 'guard_verification_cache_total{cache="verification",result="hit"} 1.0' in text
    assert 'guard_verification_cache_total{cache="verification",result="miss"} 1.0' in text
    assert 'guard_admission_malformed_requests_total{reason="malformed"} 1.0' in text
    assert "guard_registry_operation_duration_seconds_bucket" in text
    assert "guard_admission_requests_in_flight 0.0" in text
    assert client.get("/validate").status_code == 405


def _served_serial(server: WebhookServer, ctx: ssl.SSLContext) -> int:
    """The serial number of the certificate served on a new connection (a new handshake)."""
    from cryptography import x509

    with (
        socket.create_connection((server.host, server.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=server.host) as tls,
    ):
        der = tls.getpeercert(True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_certificate_is_reloaded_without_restart(
    start_server: StartServer, tls_files: tuple[Path, Path], ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    server, client = start_server(fake_registry())
    before = _served_serial(server, client_context)
    cert, key = tls_files
    # requests keep flowing during the rotation, on a kept-alive connection and on new ones
    stop = threading.Event()
    outcomes: list[bool] = []

    def traffic() -> None:
        with httpx.Client(base_url=server.url, verify=client_context, timeout=30) as kept:
            while not stop.is_set() and len(outcomes) < 5000:
                outcomes.append(post(kept, admission_review(pod(SIGNED)))["allowed"] is True)
                with httpx.Client(base_url=server.url, verify=client_context, timeout=30) as fresh:
                    outcomes.append(fresh.get("/healthz").status_code == 200)

    flowing = threading.Thread(target=traffic)
    flowing.start()
    # a broken pair (key of another certificate) is refused; the old certificate keeps serving
    other = ca.issue_cert("127.0.0.1")
    cert.write_bytes(b"".join(b.bytes() for b in other.cert_chain_pems))
    assert server.certificate.reload_if_changed() is False
    assert _served_serial(server, client_context) == before
    # the matching key arrives: the new certificate is served to new connections
    key.write_bytes(other.private_key_pem.bytes())
    for _ in range(2000):  # the watcher polls every 50 ms
        if server.certificate.reloads:
            break
        threading.Event().wait(0.01)
    assert server.certificate.reloads == 1
    assert _served_serial(server, client_context) != before
    stop.set()
    flowing.join(60)
    assert outcomes and all(outcomes)  # not one request dropped or refused
    assert post(client, admission_review(pod(SIGNED)))["allowed"] is True


def test_before_the_engine_is_loaded_every_admission_route_answers_503() -> None:
    """(The app called without its lifespan: what a request arriving while the server drains,
    its engine closed, gets.) A 503 is never an allow: the API server applies failurePolicy."""
    import asyncio

    from guard.admission.metrics import AdmissionMetrics
    from webhook.app import create_app

    async def never() -> Any:
        raise AssertionError("not loaded in this test")

    app = create_app(never, metrics=AdmissionMetrics(), max_body_bytes=1024)
    body = json.dumps(admission_review(pod(SIGNED))).encode()

    async def ask(path: str, method: str = "POST") -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[MutableMapping[str, Any]] = []
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
        }
        await app(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    for path in ("/validate", "/mutate"):
        status, headers, answer = asyncio.run(ask(path))
        assert status == 503 and headers[b"content-type"] == b"application/json"
        assert int(headers[b"content-length"]) == len(answer)
        assert "not ready" in json.loads(answer)["error"]
    status, headers, _ = asyncio.run(ask("/validate", "GET"))
    assert status == 405 and headers[b"allow"] == b"POST"
