"""A real Prometheus behind TLS and basic auth (its --web.config.file): guard verifies the server
against the given CA, sends the credentials, and refuses an unknown CA or a wrong password
with an infrastructure error naming the URL."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from guard.energy.prometheus import PrometheusClient, PrometheusError
from guard.energy.settings import PrometheusSettings
from guard.testing.prometheus import PrometheusServer, available

pytestmark = pytest.mark.skipif(
    not (available() and shutil.which("htpasswd")), reason="needs prometheus and htpasswd (apache2-utils)"
)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, Path, Path]]:
    tmp = tmp_path_factory.mktemp("prom-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "server.crt"))
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    hashed = (
        subprocess.run(
            ["htpasswd", "-nbBC", "10", "guard", "s3cret"], check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .split(":", 1)[1]
    )
    web = (
        f"tls_server_config:\n  cert_file: {tmp / 'server.crt'}\n  key_file: {tmp / 'server.key'}\n"
        f"basic_auth_users:\n  guard: '{hashed}'\n"
    )
    (tmp / "password").write_text("s3cret\n")
    (tmp / "wrong").write_text("nope\n")
    server = PrometheusServer(
        tmp, web_config=web, https=True, ca_file=tmp / "ca.pem", auth=("guard", "s3cret")
    )
    with server:
        yield server, tmp / "ca.pem", tmp


def test_tls_verified_with_the_ca_and_basic_auth(secured: tuple[PrometheusServer, Path, Path]) -> None:
    server, ca, tmp = secured
    settings = PrometheusSettings.model_validate(
        {"url": server.url, "caFile": ca, "username": "guard", "passwordFile": tmp / "password"}
    )
    with PrometheusClient(settings) as client:
        assert [s.value for s in client.query("vector(1)", datetime.now(UTC))] == [1.0]


def test_unknown_ca_and_wrong_password_are_refused(secured: tuple[PrometheusServer, Path, Path]) -> None:
    server, ca, tmp = secured
    untrusted = PrometheusSettings.model_validate(
        {"url": server.url, "username": "guard", "passwordFile": tmp / "password"}
    )
    with (
        PrometheusClient(untrusted) as client,
        pytest.raises(PrometheusError, match=r"unreachable.*CERTIFICATE_VERIFY"),
    ):
        client.query("vector(1)", datetime.now(UTC))
    wrong = PrometheusSettings.model_validate(
        {"url": server.url, "caFile": ca, "username": "guard", "passwordFile": tmp / "wrong"}
    )
    with (
        PrometheusClient(wrong) as client,
        pytest.raises(PrometheusError, match=re.escape(f"{server.url} answered HTTP 401")),
    ):
        client.query("vector(1)", datetime.now(UTC))


def test_a_ca_file_that_is_not_pem_is_a_config_error(tmp_path: Path) -> None:
    from guard.errors import ConfigError

    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="is not a PEM CA bundle"):
        PrometheusClient(PrometheusSettings.model_validate({"url": "https://p.example", "caFile": bad}))
    with pytest.raises(ConfigError, match="does not exist"):
        PrometheusClient(
            PrometheusSettings.model_validate({"url": "https://p.example", "caFile": tmp_path / "x"})
        )
