"""``guard serve`` connects, as it says ready, to the registry hosts its trust rules name
(``admission.registry.preconnect``): the first admission there finds a verified TLS connection
in the pool its stores share instead of paying DNS, TCP and the handshake. The pre-connect sends
no credentials, connects only where the target policy allows, and a host that does not answer
changes nothing (logged; its first admission connects itself)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

import guard.oci.client as client_module
from guard.admission.verifier import OciReferenceVerifier, preconnect_targets
from guard.config import parse_config
from guard.errors import NotFoundError
from guard.oci.registry import RegistryAccess, RegistryClient, RegistryStore
from guard.signing.keys import generate_keypair
from guard.testing.admission_registry import publish_models
from guard.testing.registry import RegistryServer

_USER = ("guard", "guard-secret")


def _rules(*globs: str) -> list[dict[str, Any]]:
    return [{"name": f"r{i}", "artifacts": [glob], "authorities": ["ci"]} for i, glob in enumerate(globs)]


def _config(tmp_path: Path, *globs: str, **extra: Any) -> dict[str, Any]:
    key = generate_keypair(tmp_path / "keys", force=True).public_key
    return {"authorities": {"ci": {"kind": "key", "key": str(key)}}, "rules": _rules(*globs), **extra}


def test_the_hosts_are_those_the_rules_name_without_globs_or_mirrors(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    globs = (
        "registry.example.com/models/**",
        "registry.example.com/other/*",  # the same host: once
        "*.corp.example/**",  # a glob host: nothing to connect to
        "**",  # no host at all
        "docker.io/library/*",  # Docker Hub's API host
        "mirrored.example/**",  # read from its mirror, never contacted
        "localhost:5000/models/**",  # loopback: probed, as any loopback registry
    )
    registries = [{"host": "mirrored.example", "mirror": {"ociLayout": str(mirror)}}]
    config = parse_config(_config(tmp_path, *globs, registries=registries))
    assert preconnect_targets(config) == (
        ("registry.example.com", False),
        ("registry-1.docker.io", False),
        ("localhost:5000", True),
    )
    # Docker Hub mirrored under its usual name is not contacted either
    hub = [{"host": "docker.io", "mirror": {"ociLayout": str(mirror)}}]
    assert preconnect_targets(parse_config(_config(tmp_path, "docker.io/library/*", registries=hub))) == ()
    off = _config(tmp_path, *globs, admission={"registry": {"preconnect": False}})
    assert preconnect_targets(parse_config(off)) == ()


def test_at_most_sixteen_hosts(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path, *(f"r{i}.example.com/**" for i in range(40))))
    assert preconnect_targets(config) == tuple((f"r{i}.example.com", False) for i in range(16))


def _pools(access: RegistryAccess, host: str, loopback: bool) -> list[Any]:
    adapter = client_module._ADAPTERS[(host, access, loopback)]
    return list(adapter.poolmanager.pools._container.values())


@pytest.mark.registry
def test_the_first_admission_reuses_the_pre_connected_connection(
    registry_tls: RegistryServer, tmp_path: Path
) -> None:
    assert registry_tls.ca_file is not None
    push = RegistryAccess(ca_file=registry_tls.ca_file, username=_USER[0], password=_USER[1])
    models = publish_models(registry_tls.host, tmp_path / "models", prefix="preconnect", access=push)
    docker = tmp_path / "docker.json"
    docker.write_text(
        json.dumps({"auths": {registry_tls.host: {"auth": base64.b64encode(b"guard:guard-secret").decode()}}})
    )
    # a timeout of its own: connection pools are shared per (host, access settings)
    registry = {"caFile": str(registry_tls.ca_file), "dockerConfig": str(docker), "timeoutSeconds": 4.25}
    verifier = OciReferenceVerifier(parse_config(models.config(admission={"registry": registry})))
    threads = verifier.preconnect()
    assert len(threads) == 1
    for thread in threads:
        thread.join(30)
    (pool,) = _pools(verifier._access, registry_tls.host, True)
    assert pool.scheme == "https"
    opened = pool.num_connections
    assert opened >= 1 and pool.pool.qsize() >= 1  # open, idle, waiting for the first admission
    assert verifier.resolve(models.signed) == models.signed_digest  # a repository not seen before
    assert pool.num_connections == opened  # no new connection, no new handshake


@pytest.mark.registry
def test_a_pre_connected_connection_the_registry_closed_is_replaced(registry_tls: RegistryServer) -> None:
    # registries and their load balancers close idle connections after a minute or so: the first
    # admission after that must not fail, nor count as a first contact that is not retried
    assert registry_tls.ca_file is not None
    access = RegistryAccess(ca_file=registry_tls.ca_file, username=_USER[0], password=_USER[1], timeout=4.75)
    RegistryClient(registry_tls.host, access, loopback=False).preconnect()
    (pool,) = _pools(access, registry_tls.host, False)
    (idle,) = [c for c in list(pool.pool.queue) if c is not None]
    closed = idle.sock
    closed.shutdown(socket.SHUT_RDWR)  # as a peer's close looks: readable, at end of stream
    store = RegistryStore.open(registry_tls.host, "preconnect/closed", access, loopback=False)
    with pytest.raises(NotFoundError):  # the registry answered: nothing was pushed there
        store.resolve("v1")
    assert idle.sock is not closed  # the closed socket dropped, the connection made again


@pytest.mark.registry
def test_the_pre_connect_sends_no_credentials(registry_tls: RegistryServer) -> None:
    assert registry_tls.ca_file is not None
    access = RegistryAccess(ca_file=registry_tls.ca_file, username=_USER[0], password=_USER[1], timeout=4.5)
    client = RegistryClient(registry_tls.host, access, loopback=False)
    assert client.preconnect() == 401  # the registry's challenge, not answered
    # the connection stays pooled and speaks verified TLS: another client of the host uses it
    (pool,) = _pools(access, registry_tls.host, False)
    assert pool.num_connections == 1
    assert client_module._ADAPTERS[(registry_tls.host, access, False)].https_answered


def test_a_host_that_does_not_answer_is_logged_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    globs = (f"127.0.0.1:{port}/models/**", "169.254.169.254/models/**")  # the second: refused
    config = parse_config(_config(tmp_path, *globs, admission={"registry": {"timeoutSeconds": 1.0}}))
    verifier = OciReferenceVerifier(config)
    with caplog.at_level(logging.INFO, logger="guard.admission.verifier"):
        threads = verifier.preconnect()
        for thread in threads:
            thread.join(30)
    assert len(threads) == 2
    messages = sorted(r.getMessage() for r in caplog.records if "pre-connecting" in r.getMessage())
    assert len(messages) == 2, messages
    assert messages[0].startswith(f"pre-connecting to registry 127.0.0.1:{port}: cannot connect")
    assert messages[1].startswith("pre-connecting to registry 169.254.169.254:")
    assert "link-local" in messages[1] or "metadata" in messages[1]
    assert not verifier.answered_recently(f"127.0.0.1:{port}/models/m:v1", 5.0)  # no answer recorded


def test_the_webhook_pre_connects_once_its_engine_is_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guard.admission.metrics import AdmissionMetrics
    from guard.admission.pipeline import AdmissionEngine
    from webhook.server import engine_loader

    started: list[AdmissionEngine] = []

    def preconnect(engine: AdmissionEngine) -> list[threading.Thread]:
        started.append(engine)
        return []

    monkeypatch.setattr(AdmissionEngine, "preconnect", preconnect)
    config = parse_config(_config(tmp_path, "registry.example.com/models/**"))

    async def load() -> AdmissionEngine:
        engine = await engine_loader(config, AdmissionMetrics())()
        await engine.aclose()
        return engine

    assert started == [asyncio.run(load())]
