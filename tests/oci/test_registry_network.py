"""Where guard connects and for how long (issue 9, items 7 and 10, and their siblings).

A registry sending one byte a second used to hold an operation forever (requests' timeout is per
read); a registry's redirect or Bearer realm could point guard at any host, the cloud metadata
service included, with the credentials. These run against real servers on 127.0.0.x: another
loopback address (127.0.0.2) stands for "another host". No test sends anything to a non-loopback
address: refusals happen before any connection.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.errors import (
    AnswerTooLargeError,
    DeadlineExceeded,
    RefusedTargetError,
    RegistryAuthError,
    RegistryError,
)
from guard.oci.answers import parse_challenge
from guard.oci.client import RegistryClient
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.targets import TargetPolicy
from tests.oci.netservers import Handler, Server, serve

D = "sha256:" + "c" * 64
_MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
).encode()


def _store(server: Server, **access: Any) -> RegistryStore:
    return RegistryStore(RegistryClient(server.netloc, RegistryAccess(**access), loopback=True), "team/model")


def _v2_ok(handler: Handler) -> bool:
    if handler.path == "/v2/":
        handler.answer(200, b"{}")
        return True
    return False


# --- item 7: the total deadline ----------------------------------------------------------------


def test_a_registry_dripping_a_manifest_hits_the_total_deadline() -> None:
    body = b"x" * 400

    def route(h: Handler) -> None:
        if not _v2_ok(h):
            h.drip(body, 0.05)  # each read gets a byte well within the per-read timeout

    with serve(route) as server:
        store = _store(server, timeout=30.0, deadline=1.0)
        with pytest.raises(DeadlineExceeded, match=rf"registry {server.netloc}: GET .*total deadline of 1 s"):
            store.fetch_manifest("v1")
        # the watchdog cut the connection: the drip (20 s long) was not waited for
        assert server.hung_up.wait(30) and server.dripped < len(body)


def test_a_registry_dripping_its_headers_hits_the_total_deadline() -> None:
    def route(h: Handler) -> None:
        if _v2_ok(h):
            return
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(400):
            if h.server_info.stop.is_set():
                return
            try:
                h.wfile.write(b"X-Drip: 1\r\n")
                h.wfile.flush()
            except OSError:
                return
            h.server_info.stop.wait(0.05)

    with serve(route) as server, pytest.raises(DeadlineExceeded, match=server.netloc):
        _store(server, timeout=30.0, deadline=1.0).resolve("v1")


def test_a_dripped_blob_is_cut_although_each_byte_earns_time() -> None:
    def route(h: Handler) -> None:
        if not _v2_ok(h):
            h.drip(b"y" * 400, 0.05)  # 20 bytes/s, far below the minimum rate

    with serve(route) as server:
        store = _store(server, timeout=30.0, deadline=1.0, min_bytes_per_second=1024)
        with pytest.raises(DeadlineExceeded, match=server.netloc), store.fetch_blob(D) as chunks:
            for _ in chunks:
                pass
        assert server.hung_up.wait(30) and server.dripped < 400


def test_a_token_server_that_drips_hits_the_deadline_of_the_operation() -> None:
    with serve(lambda h: h.drip(b"{" * 400, 0.05)) as token:

        def route(h: Handler) -> None:
            realm = f'Bearer realm="{token.url}/token",service="reg"'
            h.answer(401, b"{}", {"Www-Authenticate": realm})

        with serve(route) as server, pytest.raises(DeadlineExceeded, match=server.netloc):
            _store(server, timeout=30.0, deadline=1.0).resolve("v1")


def test_a_registry_that_accepts_and_never_speaks_hits_the_deadline() -> None:
    # the TLS handshake itself waits: only the watchdog ends it
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    try:
        client = RegistryClient(host, RegistryAccess(timeout=30.0, deadline=1.0), loopback=True)
        with pytest.raises(DeadlineExceeded, match=host):
            client.request("GET", "/v2/")
    finally:
        for sock in accepted:
            sock.close()
        listener.close()


def test_one_dripping_operation_does_not_hold_the_others() -> None:
    def route(h: Handler) -> None:
        if _v2_ok(h):
            return
        if "slow" in h.path:
            h.drip(b"s" * 400, 0.05)
        else:
            h.answer(200, _MANIFEST, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})

    with serve(route) as server:
        errors: list[BaseException] = []
        bodies: list[bytes] = []

        def slow() -> None:
            try:
                _store(server, timeout=30.0, deadline=1.0).fetch_manifest("slow")
            except DeadlineExceeded as err:
                errors.append(err)

        threads = [threading.Thread(target=slow) for _ in range(6)]
        for thread in threads:
            thread.start()
        fast = _store(server, timeout=30.0, deadline=20.0)
        bodies.extend(fast.fetch_manifest(f"v{i}").body for i in range(5))
        for thread in threads:
            thread.join(30)
    assert len(errors) == 6 and bodies == [_MANIFEST] * 5


def test_a_connection_cut_mid_body_is_a_registry_error_not_a_traceback() -> None:
    def route(h: Handler) -> None:
        if _v2_ok(h):
            return
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b"partial")
        h.close_connection = True

    with serve(route) as server:
        store = _store(server)
        with pytest.raises(RegistryError, match=server.netloc), store.fetch_blob(D) as chunks:
            for _ in chunks:
                pass


def test_the_deadline_does_not_cut_a_healthy_registry(registry: Any, model_dir: Path, tmp_path: Path) -> None:
    from guard.oci.pull import pull
    from guard.oci.push import push_model
    from guard.oci.reference import parse_reference
    from guard.oci.store import open_store

    access = RegistryAccess(deadline=30.0, min_bytes_per_second=1024)
    ref = parse_reference(f"oci://{registry.host}/tests/deadline:v1")
    assert push_model(open_store(ref, access), model_dir, "v1").uploaded == 5
    pull(open_store(ref, access), ref, tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == (
        model_dir / "model.safetensors"
    ).read_bytes()


# --- item 10: redirects ------------------------------------------------------------------------


def _redirecting(target: str, *, basic: tuple[str, str] | None = None) -> Any:
    expected = "Basic " + base64.b64encode(":".join(basic).encode()).decode() if basic else None

    def route(h: Handler) -> None:
        if expected and h.headers.get("Authorization") != expected:
            h.answer(401, b"{}", {"Www-Authenticate": 'Basic realm="registry"'})
        elif h.path == "/v2/":
            h.answer(200, b"{}")
        else:
            h.answer(307, b"", {"Location": target})

    return route


def test_a_redirect_to_another_host_is_refused_before_any_connection() -> None:
    refused = r"redirect to 127\.0\.0\.2.*registry\.redirect_hosts"
    with (
        serve(lambda h: h.answer(200, _MANIFEST), host="127.0.0.2") as other,
        serve(_redirecting(f"{other.url}/blob")) as server,
        pytest.raises(RefusedTargetError, match=refused),
    ):
        _store(server).fetch_manifest("v1")
    assert other.seen == []


def test_an_allowed_redirect_never_carries_the_credentials() -> None:
    with (
        serve(lambda h: h.answer(200, _MANIFEST), host="127.0.0.2") as other,
        serve(_redirecting(f"{other.url}/blob", basic=("guard", "secret"))) as server,
    ):
        store = _store(server, username="guard", password="secret", redirect_hosts=("127.0.0.2",))
        assert store.fetch_manifest("v1").body == _MANIFEST
    assert [s.path for s in other.seen] == ["/blob"]
    assert "Authorization" not in other.seen[0].headers
    assert any("Authorization" in s.headers for s in server.seen)  # the registry itself got them


def test_a_redirect_to_the_same_host_is_followed() -> None:
    def route(h: Handler) -> None:
        if h.path == "/v2/":
            h.answer(200, b"{}")
        elif h.path == "/moved":
            h.answer(200, _MANIFEST)
        else:
            h.answer(302, b"", {"Location": "/moved"})

    with serve(route) as server:
        assert _store(server).fetch_manifest("v1").body == _MANIFEST


def test_a_redirect_loop_ends_after_a_few_hops() -> None:
    with (
        serve(_redirecting("/v2/team/model/manifests/v1")) as server,
        pytest.raises(RefusedTargetError, match="more than 5 redirects"),
    ):
        _store(server).fetch_manifest("v1")
    assert len([s for s in server.seen if s.path.endswith("/v1")]) == 6


@pytest.mark.parametrize("location", ["http://[::1", "http://127.0.0.2:99999/x", "//[zz]/x"])
def test_a_malformed_location_is_refused(location: str) -> None:
    with serve(_redirecting(location)) as server, pytest.raises(RegistryError):
        _store(server, redirect_hosts=("127.0.0.2",)).fetch_manifest("v1")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/", "cloud metadata"),
        ("http://169.254.10.10/x", "link-local"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://10.0.0.1/blob", "private"),
        ("http://[::ffff:169.254.169.254]/x", "cloud metadata"),
        ("file:///etc/passwd", "expected an http"),
        ("http://user:pw@127.0.0.2/x", "credentials in it"),
    ],
)
def test_redirects_to_metadata_link_local_and_private_addresses_are_refused(target: str, reason: str) -> None:
    allowed = ("169.254.169.254", "fd00:ec2::254", "169.254.10.10", "metadata.google.internal", "10.0.0.1")
    with serve(_redirecting(target)) as server, pytest.raises(RefusedTargetError, match=reason):
        _store(server, redirect_hosts=(*allowed, "::ffff:169.254.169.254", "127.0.0.2")).fetch_manifest("v1")


def test_an_upload_location_on_another_host_is_refused(tmp_path: Path) -> None:
    with serve(lambda h: h.answer(201, b""), host="127.0.0.2") as other:

        def route(h: Handler) -> None:
            if h.path == "/v2/":
                h.answer(200, b"{}")
            else:
                h.answer(202, b"", {"Location": f"{other.url}/upload/1"})

        with serve(route) as server:
            blob = tmp_path / "blob"
            blob.write_bytes(b"weights")
            with pytest.raises(RefusedTargetError, match="upload location"):
                _store(server).push_blob(D, 7, lambda: blob.open("rb"))
    assert other.seen == []


# --- item 10: token realms ---------------------------------------------------------------------


def _bearer(realm: str) -> Any:
    def route(h: Handler) -> None:
        if h.headers.get("Authorization") == "Bearer good-token":
            h.answer(200, _MANIFEST, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        else:
            h.answer(401, b"{}", {"Www-Authenticate": f'Bearer realm="{realm}",service="reg",scope="x"'})

    return route


def _token_server(h: Handler) -> None:
    h.answer(200, json.dumps({"token": "good-token"}).encode(), {"Content-Type": "application/json"})


def test_a_token_realm_on_another_host_is_refused_and_gets_no_credentials() -> None:
    with serve(_token_server, host="127.0.0.2") as token, serve(_bearer(f"{token.url}/token")) as server:
        store = _store(server, username="guard", password="secret")
        with pytest.raises(RefusedTargetError, match=r"token realm to 127\.0\.0\.2.*registry\.token_hosts"):
            store.fetch_manifest("v1")
    assert token.seen == []


def test_an_allowed_token_realm_is_used() -> None:
    with serve(_token_server, host="127.0.0.2") as token, serve(_bearer(f"{token.url}/token")) as server:
        store = _store(server, username="guard", password="secret", token_hosts=("127.0.0.2",))
        assert store.fetch_manifest("v1").body == _MANIFEST
    assert token.seen and token.seen[0].headers.get("Authorization", "").startswith("Basic ")


@pytest.mark.parametrize(
    ("realm", "reason"),
    [
        ("http://169.254.169.254/token", "cloud metadata"),
        ("http://metadata.google.internal/token", "cloud metadata"),
        ("http://10.1.2.3/token", "private"),
        ("gopher://127.0.0.1/token", "expected an http"),
    ],
)
def test_a_token_realm_at_metadata_or_private_addresses_is_refused(realm: str, reason: str) -> None:
    hosts = ("169.254.169.254", "metadata.google.internal", "10.1.2.3")
    with serve(_bearer(realm)) as server, pytest.raises(RefusedTargetError, match=reason):
        _store(server, token_hosts=hosts).fetch_manifest("v1")


def test_a_token_server_answer_over_the_cap_is_refused() -> None:
    def huge(h: Handler) -> None:
        h.answer(200, b'{"token": "' + b"a" * (2 * 1024 * 1024) + b'"}')

    with (
        serve(huge) as token,
        serve(_bearer(f"{token.url}/token")) as server,
        pytest.raises(RegistryError, match="more than"),
    ):
        _store(server).fetch_manifest("v1")


def test_www_authenticate_is_parsed_with_bounds() -> None:
    scheme, params = parse_challenge('Bearer realm="https://a/t",service="r",scope="repository:x:pull,push"')
    assert (
        scheme == "bearer"
        and params["scope"] == "repository:x:pull,push"
        and params["realm"] == "https://a/t"
    )
    with pytest.raises(RegistryAuthError, match="longer than"):
        parse_challenge("Bearer " + "a" * 10_000)
    assert parse_challenge("Bearer garbage") == ("bearer", {})


# --- siblings: answers a registry controls -------------------------------------------------------


def test_a_huge_error_body_is_not_read_whole() -> None:
    def route(h: Handler) -> None:
        if not _v2_ok(h):
            h.send_response(500)
            h.send_header("Content-Length", str(50 * 1024 * 1024))
            h.end_headers()
            try:
                for _ in range(50 * 16):
                    h.wfile.write(b"e" * 65536)
            except OSError:
                return

    with serve(route) as server, pytest.raises(RegistryError, match="HTTP 500"):
        _store(server).fetch_manifest("v1")


def test_a_body_longer_than_the_cap_is_refused_without_content_length() -> None:
    def route(h: Handler) -> None:
        if _v2_ok(h):
            return
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        try:
            for _ in range(6 * 16):
                h.wfile.write(b"10000\r\n" + b"[" * 65536 + b"\r\n")
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            return

    with serve(route) as server, pytest.raises(AnswerTooLargeError, match="more than") as info:
        _store(server).client.request("GET", "/v2/team/model/referrers/" + D)
    assert info.value.limit == 4 * 1024 * 1024 and isinstance(info.value, RegistryError)


def test_a_head_with_a_malformed_content_length_falls_back_to_the_body() -> None:
    def route(h: Handler) -> None:
        if h.command == "HEAD":
            h.send_response(200)
            h.send_header("Docker-Content-Digest", D)
            h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            h.send_header("Content-Length", "-5")
            h.end_headers()
        elif not _v2_ok(h):
            h.answer(200, _MANIFEST, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})

    with serve(route) as server:
        found = _store(server).resolve("v1")
    assert found.size == len(_MANIFEST)


# --- the address policy, without any network --------------------------------------------------


def _resolving(table: dict[str, str]) -> Any:
    def resolver(host: str, port: int) -> list[tuple[Any, ...]]:
        address = table[host]
        family = 10 if ":" in address else 2
        return [(family, 1, 6, "", (address, port))]

    return resolver


def test_a_public_registry_may_not_send_guard_to_loopback_or_private_hosts() -> None:
    policy = TargetPolicy.build(
        "registry.example",
        redirect_hosts=("blobs.example", "cache.example"),
        resolver=_resolving(
            {"registry.example": "93.184.216.34", "blobs.example": "127.0.0.1", "cache.example": "10.2.3.4"}
        ),
    )
    with pytest.raises(RefusedTargetError, match="loopback"):
        policy.addresses("blobs.example", 443)
    with pytest.raises(RefusedTargetError, match="private"):
        policy.addresses("cache.example", 443)
    # the registry itself is what the user named: private and loopback are fine for it
    assert policy.addresses("registry.example", 443)


def test_a_private_registry_may_use_private_blob_storage_and_networks_can_be_allowed() -> None:
    table = {"registry.internal": "10.0.0.5", "minio.internal": "10.0.0.6", "meta.example": "169.254.169.254"}
    policy = TargetPolicy.build(
        "registry.internal:5000", redirect_hosts=("minio.internal",), resolver=_resolving(table)
    )
    assert policy.addresses("minio.internal", 9000)[0][4][0] == "10.0.0.6"
    with pytest.raises(RefusedTargetError, match="cloud metadata"):
        policy.addresses("meta.example", 80)  # a DNS name that resolves to metadata is refused too
    allowed = TargetPolicy.build(
        "registry.example",
        allowed_networks=("169.254.0.0/16",),
        resolver=_resolving({"registry.example": "1.1.1.1"}),
    )
    assert allowed.addresses("169.254.169.254", 80)
    assert ipaddress.ip_network("169.254.0.0/16") in allowed.allowed_networks


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "metadata.google.internal", "[fd00:ec2::254]:80", "169.254.1.1"]
)
def test_the_registry_itself_may_not_be_cloud_metadata_or_link_local(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # a proxy changes nothing: refused first
    with pytest.raises(RefusedTargetError, match=r"metadata|link-local"):
        RegistryClient(host, RegistryAccess(), loopback=False)


def test_well_known_registries_have_their_token_and_blob_hosts() -> None:
    hub = TargetPolicy.build("registry-1.docker.io")
    hub.check_realm("https://auth.docker.io/token")
    hub.check_redirect("https://production.cloudflare.docker.com/registry-v2/x")
    with pytest.raises(RefusedTargetError):
        hub.check_redirect("https://attacker.example/x")
    ecr = TargetPolicy.build("123.dkr.ecr.eu-west-1.amazonaws.com")
    ecr.check_redirect("https://prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com/x")
    with pytest.raises(RefusedTargetError):
        ecr.check_redirect("https://evil.s3.eu-west-1.amazonaws.com.attacker.example/x")


# --- configuration -----------------------------------------------------------------------------


def test_admission_settings_reach_the_registry_client(keypair: tuple[Path, Path]) -> None:
    from guard.admission.verifier import OciReferenceVerifier, rule_hosts
    from guard.config import parse_config

    config = parse_config(
        {
            "authorities": {"ci": {"kind": "key", "key": str(keypair[1])}},
            "rules": [
                {"name": "a", "artifacts": ["Registry.Example.com:443/models/**"], "authorities": ["ci"]},
                {
                    "name": "b",
                    "artifacts": ["*.corp.example/**", "**", "nginx", "docker.io/x/*"],
                    "authorities": ["ci"],
                },
            ],
            "admission": {
                "registry": {
                    "deadlineSeconds": 2.5,
                    "redirectHosts": ["blobs.corp.example"],
                    "allowedNetworks": ["10.0.0.0/8"],
                }
            },
        }
    )
    assert rule_hosts(config) == ("registry.example.com", "*.corp.example", "registry-1.docker.io")
    access = OciReferenceVerifier(config)._access
    assert access.deadline == 2.5 and access.redirect_hosts == ("blobs.corp.example",)
    assert access.trusted_hosts == rule_hosts(config) and access.allowed_networks == ("10.0.0.0/8",)


def test_a_bad_allowed_network_is_a_config_error() -> None:
    from guard.config import parse_config
    from guard.errors import ConfigError

    with pytest.raises(ConfigError, match=r"admission\.registry\.allowedNetworks.*expected a CIDR"):
        parse_config({"admission": {"registry": {"allowedNetworks": ["10.0.0.0/33"]}}})


def test_docker_hub_credentials_are_found_under_the_index_url(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    secret = base64.b64encode(b"guard:hub-secret").decode()
    config.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": secret}}}))
    client = RegistryClient("registry-1.docker.io", RegistryAccess(docker_config=config), loopback=False)
    assert client._has_credentials


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_a_refused_redirect_exits_3_and_says_which_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.cli import run

    with (
        serve(lambda h: h.answer(200, _MANIFEST), host="127.0.0.2") as other,
        serve(_redirecting(f"{other.url}/blob")) as server,
    ):
        code = run(["pull", f"oci://{server.netloc}/team/model:v1", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 3 and "refused redirect to 127.0.0.2" in " ".join(err.split()), err
        assert other.seen == []
        monkeypatch.setenv("GUARD_REGISTRY_REDIRECT_HOSTS", "127.0.0.2, blobs.example")
        run(["pull", f"oci://{server.netloc}/team/model:v1", str(tmp_path / "out2")])
        assert other.seen and {s.path for s in other.seen} == {"/blob"}  # followed (the junk then fails)


def test_cli_a_dripping_registry_exits_3_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.cli import run

    def route(h: Handler) -> None:
        if not _v2_ok(h):
            h.drip(b"z" * 400, 0.05)

    monkeypatch.setenv("GUARD_REGISTRY_DEADLINE", "1")
    with serve(route) as server:
        code = run(["pull", f"oci://{server.netloc}/team/model:v1", str(tmp_path / "out")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 3 and "total deadline of 1 s" in err and server.netloc in err, err


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("GUARD_REGISTRY_DEADLINE", "soon", "expected a number of seconds"),
        ("GUARD_REGISTRY_DEADLINE", "0", "above 0"),
        ("GUARD_REGISTRY_ALLOWED_NETWORKS", "10.0.0.0/8,nope", "expected CIDRs"),
    ],
)
def test_cli_network_environment_is_checked(variable: str, value: str, needle: str) -> None:
    from guard.commands.registry_options import registry_network_environment
    from guard.errors import UsageError

    with pytest.raises(UsageError, match=needle):
        registry_network_environment({variable: value})


def test_cli_network_environment_is_read() -> None:
    from guard.commands.registry_options import registry_network_environment

    found = registry_network_environment(
        {"GUARD_REGISTRY_DEADLINE": "7.5", "GUARD_REGISTRY_TOKEN_HOSTS": "auth.example, ", "OTHER": "x"}
    )
    assert found == {"deadline": 7.5, "token_hosts": ("auth.example",)}


# --- properties: what a registry writes never escapes as anything but guard's error ------------

_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.text(max_size=400))
def test_any_challenge_parses_or_is_an_auth_error(header: str) -> None:
    try:
        scheme, params = parse_challenge(header)
    except RegistryAuthError:
        return
    assert scheme == scheme.lower() and all(isinstance(v, str) for v in params.values())


_URLS = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["http", "https", "ftp", "HTTP", ""]),
        st.one_of(
            st.sampled_from(
                [
                    "127.0.0.1",
                    "169.254.169.254",
                    "[fd00:ec2::254]",
                    "metadata.google.internal.",
                    "10.0.0.1",
                    "[::ffff:169.254.169.254]",
                    "0.0.0.0",
                    "[::]",
                    "a@b",
                    "evil.example:99999",
                    "[::1",
                ]
            ),
            st.text(alphabet="abc.:-[]@%0129", max_size=30),
        ),
        st.text(max_size=20),
    ),
)


@_FUZZ
@given(_URLS)
def test_any_redirect_target_is_checked_without_connecting(url: str) -> None:
    def no_dns(host: str, port: int) -> list[tuple[Any, ...]]:
        raise AssertionError("a host-name check must not resolve")

    policy = TargetPolicy.build("127.0.0.1:5000", redirect_hosts=("*",), resolver=no_dns)
    try:
        policy.check_redirect(url)
        policy.check_realm(url)
    except RegistryError:
        pass


def test_a_connection_outside_of_an_operation_is_a_bug_not_an_unreachable_registry() -> None:
    # a RegistryError here would be covered by a fail-open rule like an outage; a bug must deny
    from guard.errors import GuardError
    from guard.oci.transport import _GuardedConnection

    connection = _GuardedConnection("registry.example.com", 443)
    with pytest.raises(RuntimeError, match="outside of an operation") as raised:
        connection._new_conn()
    assert not isinstance(raised.value, GuardError)
