"""The real webhook over real TLS reading a registry from a local mirror (an OCI layout directory
per repository, guard.oci.mirror): no registry runs, the registry host does not even resolve."""

from __future__ import annotations

import json
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.config import parse_config
from guard.oci.layout import LayoutStore
from guard.testing.admission import admission_review, pod
from guard.testing.admission_registry import PublishedModels, publish_models
from webhook.server import WebhookServer, build_app
from webhook.tls import ReloadingCertificate

HOST = "registry.air-gapped.invalid"  # .invalid never resolves: any network access would fail


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[PublishedModels, Path]:
    root = tmp_path_factory.mktemp("mirror")
    models = publish_models(HOST, tmp_path_factory.mktemp("models"), prefix="team", mirror=root)
    return models, root


def _config(models: PublishedModels, root: Path) -> dict[str, Any]:
    return models.config(registries=[{"host": HOST, "mirror": {"ociLayout": str(root)}}])


@pytest.fixture
def client(
    mirror: tuple[PublishedModels, Path], tls_files: tuple[Path, Path], client_context: ssl.SSLContext
) -> Iterator[httpx.Client]:
    app = build_app(parse_config(_config(*mirror)), ReloadingCertificate(*tls_files))
    server = WebhookServer(app, ReloadingCertificate(*tls_files)).start()
    with httpx.Client(base_url=server.url, verify=client_context, timeout=30) as c:
        yield c
    server.stop()


def answer(client: httpx.Client, obj: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/validate", json=admission_review(obj))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["response"]
    return result


def test_signed_model_in_the_mirror_is_allowed_by_tag_and_digest(
    mirror: tuple[PublishedModels, Path], client: httpx.Client
) -> None:
    models, _ = mirror
    result = answer(client, pod(models.signed))
    assert result["allowed"] is True, result
    verified = json.loads(result["auditAnnotations"]["verified"])
    assert verified[0]["digest"] == models.signed_digest
    pinned = models.signed.rsplit(":", 1)[0] + "@" + models.signed_digest
    assert answer(client, pod(pinned))["allowed"] is True


def test_unsigned_and_tampered_in_the_mirror_are_denied(
    mirror: tuple[PublishedModels, Path], client: httpx.Client
) -> None:
    models, _ = mirror
    unsigned = answer(client, pod(models.unsigned))
    assert unsigned["allowed"] is False
    assert "no signature is attached" in unsigned["status"]["message"]
    tampered = answer(client, pod(models.tampered))
    assert tampered["allowed"] is False
    assert models.tampered_file in tampered["status"]["message"]


def test_what_the_mirror_lacks_is_denied_with_a_clear_message(
    mirror: tuple[PublishedModels, Path], client: httpx.Client
) -> None:
    models, root = mirror
    missing_repo = answer(client, pod(f"{HOST}/team/absent:v1"))
    assert missing_repo["allowed"] is False
    message = missing_repo["status"]["message"]
    assert "not in the mirror of" in message and str(root / "team" / "absent") in message, message
    missing_tag = answer(client, pod(models.signed.rsplit(":", 1)[0] + ":v2"))
    assert missing_tag["allowed"] is False
    assert "no tag 'v2'" in missing_tag["status"]["message"]
    assert "its tags: v1" in missing_tag["status"]["message"]
    missing_digest = answer(client, pod(f"{HOST}/team/signed@sha256:{'0' * 64}"))
    assert missing_digest["allowed"] is False
    assert "not in the mirror" in missing_digest["status"]["message"]


def test_a_fail_open_rule_does_not_cover_a_missing_mirror_entry(
    mirror: tuple[PublishedModels, Path], tls_files: tuple[Path, Path], client_context: ssl.SSLContext
) -> None:
    models, root = mirror
    config = _config(models, root)
    config["admission"] = {"failOpenRules": ["models"]}
    app = build_app(parse_config(config), ReloadingCertificate(*tls_files))
    server = WebhookServer(app, ReloadingCertificate(*tls_files)).start()
    try:
        with httpx.Client(base_url=server.url, verify=client_context, timeout=30) as c:
            assert answer(c, pod(f"{HOST}/team/absent:v1"))["allowed"] is False
    finally:
        server.stop()


def test_referrers_from_a_fallback_tag_index(tmp_path: Path, mirror: tuple[PublishedModels, Path]) -> None:
    """A mirror copied from a registry without the Referrers API holds the signature in a
    sha256-<hex> index and not as a listed manifest with a subject: it is still found."""
    from guard.oci.mirror import MirrorStore
    from guard.oci.types import OCI_INDEX

    models, root = mirror
    copy = tmp_path / "mirror"
    shutil.copytree(root, copy)
    layout = LayoutStore(copy / "team" / "signed")
    index = json.loads((copy / "team" / "signed" / "index.json").read_text())
    tagged = "org.opencontainers.image.ref.name"
    referrers = [m for m in index["manifests"] if tagged not in m.get("annotations", {})]
    assert referrers, "the published signature is a listed referrer"
    index["manifests"] = [m for m in index["manifests"] if m not in referrers]
    (copy / "team" / "signed" / "index.json").write_text(json.dumps(index))
    store = MirrorStore(HOST, "team/signed", copy)
    assert store.referrers(models.signed_digest) == []
    fallback = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": referrers}
    layout.push_manifest(json.dumps(fallback).encode(), OCI_INDEX, "sha256-" + models.signed_digest[7:])
    found = store.referrers(models.signed_digest)
    assert [d.digest for d in found] == [m["digest"] for m in referrers]


def test_the_mirror_is_read_only_and_push_names_the_layout(mirror: tuple[PublishedModels, Path]) -> None:
    from guard.errors import UsageError
    from guard.oci.reference import parse_reference
    from guard.oci.registry import RegistryAccess
    from guard.oci.store import open_store

    _, root = mirror
    access = RegistryAccess(mirrors=((HOST, str(root)),))
    with pytest.raises(UsageError, match="push to the layout itself"):
        open_store(parse_reference(f"oci://{HOST}/team/new:v1"), access, create=True)
    store = open_store(parse_reference(f"oci://{HOST}/team/signed:v1"), access)
    with pytest.raises(UsageError, match="read-only mirror"):
        store.push_manifest(b"{}", "application/json", "x")


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    from guard.errors import ConfigError

    with pytest.raises(ConfigError, match=r"registries\.0\.mirror\.ociLayout: expected a directory"):
        parse_config({"registries": [{"host": HOST, "mirror": {"ociLayout": str(tmp_path / "none")}}]})
    with pytest.raises(ConfigError, match=r"registries\.1\.host: registry .* listed more than once"):
        parse_config({"registries": [{"host": HOST}, {"host": HOST}]})
    with pytest.raises(ConfigError, match=r"registries\.0\.host: .*expected a registry host"):
        parse_config({"registries": [{"host": "registry.example/team"}]})
    relative = parse_config({"registries": [{"host": HOST, "mirror": {"ociLayout": "."}}]}, base_dir=tmp_path)
    mirror = relative.registries[0].mirror
    assert mirror is not None and mirror.oci_layout == tmp_path


def test_guard_check_reads_the_mirror(
    mirror: tuple[PublishedModels, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from guard.cli import run

    models, root = mirror
    config = tmp_path / "guard.yaml"
    config.write_text(yaml.safe_dump(_config(models, root)))
    manifests = tmp_path / "pods.yaml"
    manifests.write_text(
        yaml.safe_dump_all([pod(models.signed, name="ok"), pod(models.tampered, name="bad")])
    )
    assert run(["check", "-f", str(manifests), "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"verified     {models.signed}" in out
    assert "DENIED   Pod/bad" in out and models.tampered_file in out
    manifests.write_text(yaml.safe_dump(pod(models.signed, name="ok")))
    assert run(["check", "-f", str(manifests), "--config", str(config)]) == 0
