"""The first contact with a registry host. The scheme is probed (``GET /v2/``) only where plain
HTTP is possible (a loopback registry, ``--insecure``); anywhere else HTTPS is the only scheme and
the first request itself verifies the TLS, one round trip less. A first contact that fails is
not retried and says what to check, as the probe did."""

from __future__ import annotations

import http.server
import itertools
import socket
import threading
from typing import TYPE_CHECKING, Any

import pytest
import requests

from guard.errors import NotFoundError, RegistryAnswerError, RegistryError, RegistryTlsError
from guard.oci.registry import RegistryAccess, RegistryStore

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer

pytestmark = pytest.mark.registry

# connection pools are shared per (host, access settings): a distinct timeout per client keeps
# each test's first contact its own
_TIMEOUTS = itertools.count(31)


def _access(**settings: Any) -> RegistryAccess:
    return RegistryAccess(timeout=float(next(_TIMEOUTS)), **settings)


def _recorded(store: RegistryStore) -> list[tuple[str, str]]:
    """(method, URL) of every request the store's client sends from now on."""
    seen: list[tuple[str, str]] = []
    session = store.client.session
    send = session.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        seen.append((method, url))
        return send(method, url, *args, **kwargs)

    session.request = request  # type: ignore[method-assign,assignment]
    return seen


def test_a_remote_registry_is_not_probed(registry_tls: RegistryServer) -> None:
    assert registry_tls.ca_file is not None
    credentials = {"ca_file": registry_tls.ca_file, "username": "guard", "password": "guard-secret"}
    remote = RegistryStore.open(registry_tls.host, "first/remote", _access(**credentials), loopback=False)
    seen = _recorded(remote)
    with pytest.raises(NotFoundError):
        remote.resolve("absent")
    probe = ("GET", f"https://{registry_tls.host}/v2/")
    assert seen and probe not in seen
    assert all(url.startswith(f"https://{registry_tls.host}/v2/first/remote/") for _, url in seen)
    # a loopback registry may speak plain HTTP: its scheme is probed first, as before
    local = RegistryStore.open(registry_tls.host, "first/local", _access(**credentials), loopback=True)
    seen = _recorded(local)
    with pytest.raises(NotFoundError):
        local.resolve("absent")
    assert seen[0] == probe
    assert len(seen) > 1


def test_a_certificate_that_does_not_verify_fails_the_first_request_at_once(
    registry_tls: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    remote = RegistryStore.open(registry_tls.host, "first/untrusted", _access(), loopback=False)
    seen = _recorded(remote)
    hint = r"TLS to .* failed: .*\. Trust the registry's CA with --ca-file$"
    with pytest.raises(RegistryTlsError, match=hint):  # no outage: a fail-open rule denies it
        remote.resolve("v1")
    assert len(seen) == 1  # not retried: a certificate does not verify on a second try either


def test_a_host_that_does_not_answer_fails_the_first_request_at_once() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{closed.getsockname()[1]}"
    remote = RegistryStore.open(host, "first/nobody", _access(), loopback=False)
    seen = _recorded(remote)
    with pytest.raises(RegistryError, match=rf"cannot connect to registry {host}"):
        remote.resolve("v1")
    assert len(seen) == 1


def test_after_the_first_answer_a_failure_is_retried(registry_tls: RegistryServer) -> None:
    assert registry_tls.ca_file is not None
    access = _access(ca_file=registry_tls.ca_file, username="guard", password="guard-secret")
    first = RegistryStore.open(registry_tls.host, "first/a", access, loopback=False)
    with pytest.raises(NotFoundError):
        first.resolve("absent")
    # a second client of the host and access shares its connections: no first contact for it
    second = RegistryStore.open(registry_tls.host, "first/b", access, loopback=False)
    seen = _recorded(second)
    adapter = second.client.session.get_adapter("https://")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise requests.exceptions.ConnectionError("connection reset")

    original = adapter.send
    adapter.send = refused  # type: ignore[method-assign]
    try:
        with pytest.raises(RegistryError, match=r"registry .*: HEAD .* failed: connection reset"):
            second.resolve("v1")
    finally:
        adapter.send = original  # type: ignore[method-assign]
    assert len(seen) == 4  # retried as any request after the host answered


class _Answering(http.server.BaseHTTPRequestHandler):
    """A plain-HTTP "registry" answering every request with the status in the server's ``status``."""

    def do_HEAD(self) -> None:
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "answered"),
    [(400, True), (405, True), (410, True), (408, False), (429, False), (500, False), (503, False)],
)
def test_an_error_answer_that_is_no_outage_is_told_apart(status: int, answered: bool) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    server.status = status  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        store = RegistryStore.open(host, "first/answers", _access(), loopback=True)
        with pytest.raises(RegistryError, match=f"failed with HTTP {status}") as caught:
            store.resolve("v1")
    finally:
        server.shutdown()
        server.server_close()
    # 4xx but 408 / 429: the registry is up and said no (no fail-open rule covers it); 5xx and
    # "busy": it could not answer
    error = caught.value
    assert isinstance(error, RegistryAnswerError) is answered
    assert not isinstance(error, RegistryAnswerError) or error.status == status
