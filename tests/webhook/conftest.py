"""A real TLS webhook server on 127.0.0.1 (CA from trustme), over fake seams."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from guard.admission.metrics import AdmissionMetrics
from guard.admission.pipeline import AdmissionEngine
from guard.admission.settings import AdmissionSettings
from guard.testing.admission import FakePolicy, FakeRule, FakeRules, FakeVerifier
from webhook.app import create_app
from webhook.deadline import DEFAULT_REQUEST_DEADLINE_SECONDS
from webhook.server import WebhookServer
from webhook.tls import ReloadingCertificate


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    leaf = ca.issue_cert("127.0.0.1", "guard.guard-system.svc")
    cert = tmp_path / "tls.crt"
    key = tmp_path / "tls.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


StartServer = Callable[..., tuple[WebhookServer, httpx.Client]]


@pytest.fixture
def start_server(tls_files: tuple[Path, Path], client_context: ssl.SSLContext) -> Iterator[StartServer]:
    started: list[tuple[WebhookServer, httpx.Client]] = []

    def start(
        verifier: FakeVerifier,
        policy: FakePolicy | None = None,
        rules: FakeRules | None = None,
        request_deadline_seconds: float | None = None,
        **settings: Any,
    ) -> tuple[WebhookServer, httpx.Client]:
        admission = AdmissionSettings(**settings)
        metrics = AdmissionMetrics()
        the_rules = rules or FakeRules(
            [
                FakeRule("models", "registry.local/models/*"),
                FakeRule("lenient", "registry.local/lenient/*", True),
            ]
        )

        async def load() -> AdmissionEngine:
            return AdmissionEngine(admission, the_rules, verifier, policy or FakePolicy(), metrics)

        certificate = ReloadingCertificate(*tls_files, poll_seconds=0.05)
        app = create_app(
            load, metrics=metrics, max_body_bytes=admission.max_body_bytes, certificate=certificate
        )
        deadline = request_deadline_seconds or DEFAULT_REQUEST_DEADLINE_SECONDS
        server = WebhookServer(app, certificate, request_deadline_seconds=deadline).start()
        client = httpx.Client(base_url=server.url, verify=client_context, timeout=30)
        started.append((server, client))
        return server, client

    yield start
    for server, client in started:
        client.close()
        server.stop()
