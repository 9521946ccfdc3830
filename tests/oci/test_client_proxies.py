"""RegistryClient reads proxy settings once (not per request), still honours HTTPS_PROXY and
NO_PROXY, and never consults ~/.netrc."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from guard.errors import ConfigError, RegistryError
from guard.oci.client import RegistryClient
from guard.oci.registry import RegistryAccess

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


class _RefusingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy on 127.0.0.1 that records each request line and refuses it (403)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        lines = self.lines

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                lines.append(self.rfile.readline().decode().strip())
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def proxy() -> Iterator[_RefusingProxy]:
    server = _RefusingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_proxies_are_read_once_and_resolved_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example, 10.0.0.0/8,registry.example:6000")
    client = RegistryClient("registry.example:5000", RegistryAccess(), loopback=False)
    session = client.session
    assert session.trust_env is False  # requests reads neither proxies, netrc nor CA bundle per request
    assert session.proxies_for("https://registry.example:5000/v2/") == {"https": "http://proxy.example:3128"}
    assert session.proxies_for("https://r.internal.example/v2/") == {}
    assert session.proxies_for("https://10.1.2.3:5000/v2/") == {}
    assert session.proxies_for("https://registry.example:6000/v2/") == {}
    assert session.proxies_for("https://11.1.2.3/v2/") == {"https": "http://proxy.example:3128"}
    # the environment as it was when the client was made
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:1")
    assert session.proxies_for("https://auth.example/token") == {"https": "http://proxy.example:3128"}


def test_https_proxy_from_the_environment_carries_registry_requests(
    monkeypatch: pytest.MonkeyPatch, proxy: _RefusingProxy
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    client = RegistryClient("registry.invalid:5000", RegistryAccess(timeout=10), loopback=False)
    with pytest.raises(RegistryError):
        client.request("GET", "/v2/")
    assert proxy.lines and proxy.lines[0].startswith("CONNECT registry.invalid:5000 ")


def test_no_proxy_from_the_environment_bypasses_the_proxy(
    monkeypatch: pytest.MonkeyPatch, proxy: _RefusingProxy
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", ".invalid")
    client = RegistryClient("registry.invalid:5000", RegistryAccess(timeout=10), loopback=False)
    with pytest.raises(RegistryError, match=r"cannot connect to registry registry\.invalid:5000"):
        client.request("GET", "/v2/")
    assert proxy.lines == []


def test_netrc_is_never_consulted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        netrc = tmp_path / "netrc"
        netrc.write_text("machine 127.0.0.1 login someone password secret\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        client = RegistryClient(f"127.0.0.1:{server.server_address[1]}", RegistryAccess(), loopback=True)
        response = client.request("GET", "/v2/")  # plain HTTP: a loopback registry without TLS
        assert response.status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    assert seen and all(header is None for header in seen)


def test_ca_file_is_authoritative_and_the_ca_bundle_variable_is_read_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("placeholder: the client only records which file it verifies with\n")
    environment_ca = tmp_path / "environment-ca.pem"
    environment_ca.write_text("placeholder\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(environment_ca))
    given = RegistryClient("registry.example", RegistryAccess(ca_file=ca_file), loopback=False)
    assert given._verify == str(ca_file)
    from_environment = RegistryClient("registry.example", RegistryAccess(), loopback=False)
    assert from_environment._verify == str(environment_ca)
    # a bundle named that is not there is a mistake in the setup, said at once (not: every
    # request failing as if the registry were down)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "absent.pem"))
    with pytest.raises(ConfigError, match=r"REQUESTS_CA_BUNDLE=.*absent\.pem: expected a PEM file .*no file"):
        RegistryClient("registry.example", RegistryAccess(), loopback=False)
    with pytest.raises(ConfigError, match=r"CA bundle .*absent\.pem: expected a PEM file .* found no file"):
        RegistryClient("registry.example", RegistryAccess(ca_file=tmp_path / "absent.pem"), loopback=False)
    with pytest.raises(ConfigError, match=r"CA bundle .*: expected a PEM file .* found a directory"):
        RegistryClient("registry.example", RegistryAccess(ca_file=tmp_path), loopback=False)
    with pytest.raises(ConfigError, match=r"docker config .*absent\.json: expected a docker config"):
        absent = RegistryAccess(ca_file=ca_file, docker_config=tmp_path / "absent.json")
        RegistryClient("registry.example", absent, loopback=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert RegistryClient("registry.example", RegistryAccess(), loopback=False)._verify is True


def test_the_docker_config_given_is_the_only_one_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # oras-py's loader adds ~/.docker/config.json to the one given and merges both in an order
    # that changes between processes: the file given must be the one whose credentials are used
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    default = {"auths": {"other.example": {"auth": "b3RoZXI6dXNlcg=="}}, "credsStore": "desktop"}
    (home / ".docker" / "config.json").write_text(json.dumps(default))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    given = tmp_path / "given.json"
    given.write_text(json.dumps({"auths": {"registry.example": {"auth": "Z2l2ZW46dXNlcg=="}}}))
    client = RegistryClient("registry.example", RegistryAccess(docker_config=given), loopback=False)
    assert client._auth._auth_config == {
        "auths": {"registry.example": {"auth": "Z2l2ZW46dXNlcg=="}},
        "credsStore": None,
        "credHelpers": {},
    }
    assert client._auth._basic_auth == "Z2l2ZW46dXNlcg=="
    # without one given, the default is read (and only it)
    default_client = RegistryClient("other.example", RegistryAccess(), loopback=False)
    assert default_client._auth._auth_config["auths"] == default["auths"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "expected a docker config.json (a JSON object), found no JSON"),
        ("[]", "expected a docker config.json (a JSON object), found list"),
        ('{"auths": 5}', 'auths: expected an object of registry -> {"auth": "<base64>"}'),
        ('{"auths": {"r.example": {"auth": 7}}}', 'auths: expected an object of registry -> {"auth"'),
        ('{"credHelpers": {"r.example": ["ecr"]}}', "credHelpers: expected an object of registry -> helper"),
        ('{"credsStore": 1}', "credsStore: expected a helper name, found int"),
    ],
)
def test_a_docker_config_that_is_not_one_is_a_config_error_naming_it(
    tmp_path: Path, content: str, expected: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(content)
    with pytest.raises(ConfigError) as caught:
        RegistryClient("registry.example", RegistryAccess(docker_config=config), loopback=False)
    assert str(caught.value).startswith(f"docker config {config}: {expected}"), caught.value


def test_the_proxies_a_session_remembers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # a registry names the hosts it redirects to (among those allowed): each one is remembered
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    client = RegistryClient("registry.example", RegistryAccess(), loopback=False)
    for i in range(1000):
        assert client.session.proxies_for(f"https://blob-{i}.storage.example/x") == {
            "https": "http://proxy.example:3128"
        }
    assert len(client.session._resolved) <= 256
