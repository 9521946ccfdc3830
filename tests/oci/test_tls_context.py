"""One TLS context per CA bundle file (guard.oci.transport.verify_context): loaded once, shared by
every registry client, still verifying, and loaded again when the file is replaced."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from guard.errors import ConfigError, NotFoundError, RegistryError
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.transport import GuardAdapter, verify_context

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer

pytestmark = pytest.mark.registry


def _access(ca_file: Path) -> RegistryAccess:
    return RegistryAccess(ca_file=ca_file, username="guard", password="guard-secret")


def _contexts(store: RegistryStore) -> list[object]:
    """The TLS contexts of the connection pools the store's client opened."""
    adapter = store.client.session.get_adapter("https://")
    assert isinstance(adapter, GuardAdapter)
    pools = adapter.poolmanager.pools  # urllib3's container: keys(), no iteration
    return [pools[key].conn_kw.get("ssl_context") for key in pools.keys()]  # noqa: SIM118


def _reach(registry: RegistryServer, repository: str, ca_file: Path, seen: list[object] | None = None) -> str:
    """'tls' when the TLS handshake was refused, else 'ok' (the tag is absent: the registry said so)."""
    store = RegistryStore.open(registry.host, repository, _access(ca_file), loopback=True)
    if seen is not None:
        seen.append(store)
    try:
        store.resolve("absent")
    except NotFoundError:
        return "ok"
    except RegistryError as err:
        assert "TLS" in str(err), err
        return "tls"
    raise AssertionError("an absent tag resolved")


def _other_ca(tmp_path: Path) -> Path:
    trustme = pytest.importorskip("trustme")
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    return other


def test_clients_share_one_context_per_bundle(registry_tls: RegistryServer, tmp_path: Path) -> None:
    assert registry_tls.ca_file is not None
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(registry_tls.ca_file.read_bytes())
    stores: list[object] = []
    assert _reach(registry_tls, "tls-ctx/a", bundle, stores) == "ok"
    first = verify_context(str(bundle))
    assert _reach(registry_tls, "tls-ctx/b", bundle, stores) == "ok"
    assert verify_context(str(bundle)) is first
    for store in stores:
        assert isinstance(store, RegistryStore)
        assert _contexts(store) == [first]  # both clients' pools verify with the one context
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname


def test_a_shared_context_still_refuses_another_ca(registry_tls: RegistryServer, tmp_path: Path) -> None:
    assert registry_tls.ca_file is not None
    assert _reach(registry_tls, "tls-ctx/c", registry_tls.ca_file) == "ok"
    # another bundle file is another context: the registry's CA cached for one file is not trusted
    # for a file that does not hold it
    assert _reach(registry_tls, "tls-ctx/c", _other_ca(tmp_path)) == "tls"


def test_a_replaced_bundle_is_loaded_again(registry_tls: RegistryServer, tmp_path: Path) -> None:
    assert registry_tls.ca_file is not None
    bundle = tmp_path / "rotating.pem"
    bundle.write_bytes(_other_ca(tmp_path).read_bytes())
    assert _reach(registry_tls, "tls-ctx/d", bundle) == "tls"
    before = verify_context(str(bundle))
    bundle.write_bytes(registry_tls.ca_file.read_bytes() + b"\n" + bundle.read_bytes())
    stat = bundle.stat()
    os.utime(bundle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert _reach(registry_tls, "tls-ctx/d", bundle) == "ok"
    assert verify_context(str(bundle)) is not before


def test_clients_of_one_host_and_access_share_connections(registry_tls: RegistryServer) -> None:
    assert registry_tls.ca_file is not None
    access = _access(registry_tls.ca_file)
    first = RegistryStore.open(registry_tls.host, "tls-pool/a", access, loopback=True)
    with pytest.raises(NotFoundError):
        first.resolve("absent")
    second = RegistryStore.open(registry_tls.host, "tls-pool/b", access, loopback=True)
    adapter = first.client.session.get_adapter("https://")
    assert second.client.session.get_adapter("https://") is adapter
    assert isinstance(adapter, GuardAdapter) and adapter.https_answered  # the second skips the probe
    with pytest.raises(NotFoundError):
        second.resolve("absent")
    # other access settings (another target policy, other credentials) never share connections
    other = RegistryAccess(
        ca_file=registry_tls.ca_file,
        username="guard",
        password="guard-secret",
        allowed_networks=("10.0.0.0/8",),
    )
    third = RegistryStore.open(registry_tls.host, "tls-pool/a", other, loopback=True)
    assert third.client.session.get_adapter("https://") is not adapter
    anonymous_access = RegistryAccess(ca_file=registry_tls.ca_file)
    anonymous = RegistryStore.open(registry_tls.host, "tls-pool/a", anonymous_access, loopback=True)
    assert anonymous.client.session.get_adapter("https://") is not adapter


def test_warm_up_loads_the_bundle_before_the_first_request(
    tmp_path: Path, registry_tls: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guard.oci.client import warm_up

    assert registry_tls.ca_file is not None
    bundle = tmp_path / "warm.pem"
    bundle.write_bytes(registry_tls.ca_file.read_bytes())
    assert warm_up(RegistryAccess(ca_file=bundle)) is verify_context(str(bundle))
    # without --ca-file: the bundle variable requests honours, else nothing to load
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert warm_up(RegistryAccess()) is verify_context(str(bundle))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert warm_up(RegistryAccess()) is None


def test_warm_up_on_its_own_thread_loads_the_bundle_or_returns_its_error(
    tmp_path: Path, registry_tls: RegistryServer
) -> None:
    from guard.oci.client import warm_up_started

    assert registry_tls.ca_file is not None
    bundle = tmp_path / "started.pem"
    bundle.write_bytes(registry_tls.ca_file.read_bytes())
    wait = warm_up_started(RegistryAccess(ca_file=bundle))
    assert wait() is None
    context = verify_context(str(bundle))  # loaded on that thread, kept for every client
    assert warm_up_started(RegistryAccess(ca_file=bundle))() is None
    assert verify_context(str(bundle)) is context
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    failed = warm_up_started(RegistryAccess(ca_file=bad))()
    assert isinstance(failed, ConfigError) and str(bad) in str(failed)
    absent = warm_up_started(RegistryAccess(ca_file=bundle, docker_config=tmp_path / "absent.json"))()
    assert isinstance(absent, ConfigError) and "docker config" in str(absent)


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"", "found no certificate (no -----BEGIN CERTIFICATE----- block)"),
        (b"not a PEM file\n", "found no certificate (no -----BEGIN CERTIFICATE----- block)"),
        (bytes(range(256)) * 8, "found no certificate (no -----BEGIN CERTIFICATE----- block)"),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n",
            "found a certificate OpenSSL cannot read (",  # then OpenSSL's words: its version's
        ),
    ],
)
def test_a_bundle_without_a_certificate_is_a_config_error_naming_it(
    tmp_path: Path, content: bytes, found: str
) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        verify_context(str(bundle))
    expected = f"CA bundle {bundle}: expected PEM certificates of the CAs to trust, {found}"
    assert str(caught.value).startswith(expected)
    assert "_ssl.c" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"CA bundle .*absent\.pem: cannot be read \(No such file"):
        verify_context(str(tmp_path / "absent.pem"))
