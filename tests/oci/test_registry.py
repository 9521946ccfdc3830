"""Against a real registry (Debian's docker-registry, distribution 2.8): round trips, auth, TLS,
tampering, unsafe paths, moved tags."""

from __future__ import annotations

import base64
import filecmp
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from guard.cli import run
from guard.errors import (
    IntegrityError,
    ReferenceChangedError,
    RegistryAuthError,
    RegistryError,
    UnsafeArtifactError,
    UntrustedContentError,
)
from guard.oci.pull import pull
from guard.oci.push import push_bytes, push_model
from guard.oci.reference import parse_reference
from guard.oci.registry import RegistryAccess
from guard.oci.store import fetch_resolved, open_store
from guard.oci.types import MODELPACK_ARTIFACT, MODELPACK_CONFIG, OCI_MANIFEST, Store, sha256_digest

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer

pytestmark = pytest.mark.registry


def _same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for name in files_a:
        assert filecmp.cmp(a / name, b / name, shallow=False), name


def test_cli_push_pull_round_trip_plain_http(
    registry: RegistryServer, repo: str, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"oci://{registry.host}/{repo}:v1"
    assert run(["push", str(model_dir), target]) == 0
    out = capsys.readouterr()
    digest = out.out.strip()
    assert digest.startswith("sha256:") and len(digest) == 71
    assert "5 files, 5 uploaded" in out.err
    # a second push uploads nothing: every blob is already there
    assert run(["push", str(model_dir), target]) == 0
    assert "0 uploaded" in capsys.readouterr().err
    dest = tmp_path / "pulled"
    assert run(["pull", f"oci://{registry.host}/{repo}@{digest}", str(dest)]) == 0
    assert capsys.readouterr().out.strip() == digest
    _same_tree(model_dir, dest)


def test_manifest_is_a_modelpack_artifact(registry: RegistryServer, repo: str, model_dir: Path) -> None:
    store = open_store(parse_reference(f"oci://{registry.host}/{repo}"))
    result = push_model(store, model_dir, "v1")
    manifest = store.fetch_manifest(result.descriptor.digest).json()
    assert manifest["artifactType"] == MODELPACK_ARTIFACT
    assert manifest["config"]["mediaType"] == MODELPACK_CONFIG
    by_path = {layer["annotations"]["org.cncf.model.filepath"]: layer for layer in manifest["layers"]}
    assert by_path["model.safetensors"]["mediaType"] == "application/vnd.cncf.model.weight.v1.raw"
    assert by_path["config.json"]["mediaType"] == "application/vnd.cncf.model.weight.config.v1.raw"
    assert by_path["README.md"]["mediaType"] == "application/vnd.cncf.model.doc.v1.raw"
    assert by_path["inference.py"]["mediaType"] == "application/vnd.cncf.model.code.v1.raw"
    weights = (model_dir / "model.safetensors").read_bytes()
    assert by_path["model.safetensors"]["digest"] == sha256_digest(weights)
    meta = json.loads(by_path["model.safetensors"]["annotations"]["org.cncf.model.file.metadata+json"])
    assert meta == {
        "name": "model.safetensors",
        "mode": 0o644,
        "uid": 0,
        "gid": 0,
        "size": len(weights),
        "mtime": "1970-01-01T00:00:00Z",
        "typeflag": 48,
    }
    config = json.loads(b"".join(_blob(store, manifest["config"]["digest"])))
    assert config["config"]["architecture"] == "LlamaForCausalLM"
    assert config["modelfs"]["diffIds"] == [layer["digest"] for layer in manifest["layers"]]


def _blob(store: Store, digest: str) -> list[bytes]:
    with store.fetch_blob(digest) as chunks:
        return list(chunks)


def test_tls_and_basic_auth_with_ca_file_even_if_env_bundle_says_otherwise(
    registry_tls: RegistryServer,
    repo: str,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A bogus REQUESTS_CA_BUNDLE must not override --ca-file.
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bogus))
    target = f"oci://{registry_tls.host}/{repo}:v1"
    monkeypatch.setattr("sys.stdin", io.StringIO("guard-secret\n"))
    code = run(
        [
            "push",
            str(model_dir),
            target,
            "--ca-file",
            str(registry_tls.ca_file),
            "--username",
            "guard",
            "--password-stdin",
        ]
    )
    assert code == 0, capsys.readouterr().err
    digest = capsys.readouterr().out.strip()
    monkeypatch.setattr("sys.stdin", io.StringIO("guard-secret\n"))
    dest = tmp_path / "out"
    assert (
        run(
            [
                "pull",
                target,
                str(dest),
                "--ca-file",
                str(registry_tls.ca_file),
                "--username",
                "guard",
                "--password-stdin",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == digest
    _same_tree(model_dir, dest)


def test_tls_without_the_ca_is_refused_and_not_downgraded(
    registry_tls: RegistryServer, repo: str, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["push", str(model_dir), f"oci://{registry_tls.host}/{repo}:v1"])
    err = capsys.readouterr().err
    assert code == 3
    assert "TLS" in err and "--ca-file" in err


def test_docker_config_credentials(
    registry_auth: RegistryServer,
    repo: str,
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.json"
    token = base64.b64encode(b"guard:guard-secret").decode()
    config.write_text(json.dumps({"auths": {registry_auth.host: {"auth": token}}}))
    assert (
        run(["push", str(model_dir), f"oci://{registry_auth.host}/{repo}:v1", "--docker-config", str(config)])
        == 0
    ), capsys.readouterr().err


def test_docker_config_env_var(
    registry_auth: RegistryServer, repo: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docker").mkdir()
    token = base64.b64encode(b"guard:guard-secret").decode()
    config = {"auths": {registry_auth.host: {"auth": token}}}
    (tmp_path / "docker" / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    store = open_store(parse_reference(f"oci://{registry_auth.host}/{repo}"))
    assert push_model(store, model_dir, "v1").uploaded == 5


def test_missing_credentials_are_a_clear_auth_error(
    registry_auth: RegistryServer, repo: str, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["push", str(model_dir), f"oci://{registry_auth.host}/{repo}:v1"]) == 3
    err = capsys.readouterr().err
    assert "requires credentials" in err and "--password-stdin" in err


def test_wrong_password_is_a_clear_auth_error_without_the_password(
    registry_auth: RegistryServer, repo: str, model_dir: Path
) -> None:
    access = RegistryAccess(username="guard", password="wrong-horse")
    store = open_store(parse_reference(f"oci://{registry_auth.host}/{repo}"), access)
    with pytest.raises(RegistryAuthError, match="refused the credentials for user 'guard'") as info:
        push_model(store, model_dir, "v1")
    assert "wrong-horse" not in str(info.value)
    assert "wrong-horse" not in repr(access)


def test_username_without_password_stdin_is_refused(
    registry_auth: RegistryServer, repo: str, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["push", str(model_dir), f"oci://{registry_auth.host}/{repo}", "--username", "guard"]) == 2
    assert "--password-stdin" in capsys.readouterr().err


def test_unreachable_registry_is_an_infrastructure_error(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.testing.registry import _free_port

    assert run(["push", str(model_dir), f"oci://127.0.0.1:{_free_port()}/x/y:v1"]) == 3
    assert "cannot connect" in capsys.readouterr().err


def test_tampered_blob_is_refused_and_never_written(
    registry: RegistryServer, repo: str, model_dir: Path, tmp_path: Path
) -> None:
    ref = parse_reference(f"oci://{registry.host}/{repo}:v1")
    store = open_store(ref)
    result = push_model(store, model_dir, "v1")
    weight = next(d for d in result.layers if d.annotations["org.cncf.model.filepath"] == "model.safetensors")
    stored = registry.blob_path(repo, weight.digest)
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF  # same size, other bytes
    stored.write_bytes(bytes(data))
    dest = tmp_path / "out"
    with pytest.raises(IntegrityError, match=r"model\.safetensors") as info:
        pull(store, ref, dest)
    assert info.value.changed == ("model.safetensors",)
    assert not (dest / "model.safetensors").exists()
    assert list(dest.iterdir()) == []  # nothing restored, no staging left behind


def _push_crafted(store: Store, layers: list[tuple[str, bytes, str]]) -> str:
    descs = []
    for path, data, media_type in layers:
        digest = push_bytes(store, data)
        descs.append(
            {
                "mediaType": media_type,
                "digest": digest,
                "size": len(data),
                "annotations": {"org.cncf.model.filepath": path},
            }
        )
    config = b'{"descriptor":{},"config":{},"modelfs":{"type":"layers","diff_ids":[]}}'
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": MODELPACK_ARTIFACT,
        "config": {"mediaType": MODELPACK_CONFIG, "digest": push_bytes(store, config), "size": len(config)},
        "layers": descs,
    }
    return str(store.push_manifest(json.dumps(manifest).encode(), OCI_MANIFEST, "evil").digest)


@pytest.mark.parametrize("evil", ["../../etc/passwd", "/etc/passwd", "ok/../../../escape"])
def test_layer_paths_escaping_the_directory_are_refused(
    registry: RegistryServer, repo: str, tmp_path: Path, evil: str
) -> None:
    store = open_store(parse_reference(f"oci://{registry.host}/{repo}"))
    doc = "application/vnd.cncf.model.doc.v1.raw"
    digest = _push_crafted(store, [("fine.txt", b"fine", doc), (evil, b"root::0:0::/:/bin/sh\n", doc)])
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(UnsafeArtifactError, match="refused"):
        pull(store, parse_reference(f"oci://{registry.host}/{repo}@{digest}"), dest)
    assert not dest.exists() or not any(dest.iterdir())  # refused before the first byte
    assert not (tmp_path / "etc").exists() and not (tmp_path / "escape").exists()


def test_symlink_in_the_target_directory_is_not_followed(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    store = open_store(parse_reference(f"oci://{registry.host}/{repo}"))
    digest = _push_crafted(store, [("sub/payload.txt", b"x", "application/vnd.cncf.model.doc.v1.raw")])
    dest = tmp_path / "out"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "sub").symlink_to(outside)
    # A non-empty target needs force=True; even then a symlink in it is never followed.
    with pytest.raises(UnsafeArtifactError, match="symlink"):
        pull(store, parse_reference(f"oci://{registry.host}/{repo}@{digest}"), dest, force=True)
    assert not (outside / "payload.txt").exists()


def test_tag_moved_between_resolve_and_fetch_is_reported(
    registry: RegistryServer, repo: str, model_dir: Path, tmp_path: Path
) -> None:
    store = open_store(parse_reference(f"oci://{registry.host}/{repo}"))
    first = push_model(store, model_dir, "stable").descriptor
    resolved = store.resolve("stable")
    assert resolved.digest == first.digest
    (model_dir / "extra.md").write_text("moved\n")
    second = push_model(store, model_dir, "stable").descriptor
    with pytest.raises(ReferenceChangedError, match="moved between resolve and fetch") as info:
        fetch_resolved(store, "stable", resolved.digest)
    assert (info.value.expected, info.value.found) == (first.digest, second.digest)


def test_missing_tag_is_not_found(
    registry: RegistryServer, repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["pull", f"oci://{registry.host}/{repo}:nope", str(tmp_path / "o")]) == 3
    assert "not found" in capsys.readouterr().err


def test_push_of_a_file_larger_than_a_chunk_streams_in_chunks(
    registry: RegistryServer, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import guard.oci.registry as registry_module

    monkeypatch.setattr(registry_module, "CHUNK_SIZE", 64 * 1024)
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(bytes(range(256)) * 1000 + b"tail")  # 256004 bytes: 4 chunks + rest
    ref = parse_reference(f"oci://{registry.host}/{repo}:v1")
    store = open_store(ref)
    push_model(store, model, "v1")
    pull(store, ref, tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == (model / "w.bin").read_bytes()


def test_non_model_artifact_is_refused_by_pull(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    store = open_store(parse_reference(f"oci://{registry.host}/{repo}"))
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": push_bytes(store, config),
            "size": 2,
        },
        "layers": [],
    }
    digest = store.push_manifest(json.dumps(manifest).encode(), OCI_MANIFEST, "img").digest
    with pytest.raises(UntrustedContentError, match="not a model artifact"):
        pull(store, parse_reference(f"oci://{registry.host}/{repo}@{digest}"), tmp_path / "o")


def test_bearer_token_flow(
    registry_token: RegistryServer,
    repo: str,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = f"oci://{registry_token.host}/{repo}:v1"
    monkeypatch.setattr("sys.stdin", io.StringIO("guard-secret\n"))
    assert run(["push", str(model_dir), target, "--username", "guard", "--password-stdin"]) == 0, (
        capsys.readouterr().err
    )
    assert registry_token.token_server is not None
    requests = list(registry_token.token_server.requests)
    pushes = [r for r in requests if repo in r.get("scope", "") and "push" in r.get("scope", "")]
    assert pushes and all(r["authorized"] == "True" for r in pushes), requests
    monkeypatch.setattr("sys.stdin", io.StringIO("guard-secret\n"))
    assert run(["pull", target, str(tmp_path / "out"), "--username", "guard", "--password-stdin"]) == 0
    _same_tree(model_dir, tmp_path / "out")


def test_bearer_token_refused_is_a_clear_auth_error(
    registry_token: RegistryServer, repo: str, model_dir: Path
) -> None:
    ref = parse_reference(f"oci://{registry_token.host}/{repo}")
    with pytest.raises(RegistryAuthError, match="refused anonymous access"):
        push_model(open_store(ref), model_dir, "v1")
    bad = open_store(ref, RegistryAccess(username="guard", password="nope"))
    with pytest.raises(RegistryAuthError, match="refused the given credentials") as info:
        push_model(bad, model_dir, "v1")
    assert "nope" not in str(info.value)


def test_docker_credential_helper(
    registry_auth: RegistryServer, repo: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-guardtest"
    helper.write_text(
        "#!/bin/sh\nread host\n"
        'printf \'{"ServerURL":"%s","Username":"guard","Secret":"guard-secret"}\' "$host"\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {registry_auth.host: "guardtest"}}))
    ref = parse_reference(f"oci://{registry_auth.host}/{repo}")
    store = open_store(ref, RegistryAccess(docker_config=config))
    assert push_model(store, model_dir, "v1").uploaded == 5


def test_plain_http_to_a_non_loopback_registry_needs_insecure(
    registry: RegistryServer, repo: str, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from guard.oci.registry import RegistryClient, RegistryStore

    # The same registry, treated as if it were remote (loopback=False).
    remote = RegistryStore(RegistryClient(registry.host, RegistryAccess(), loopback=False), repo)
    with pytest.raises(RegistryError, match="--insecure"):
        remote.blob_exists("sha256:" + "0" * 64)
    client = RegistryClient(registry.host, RegistryAccess(insecure=True), loopback=False)
    insecure = RegistryStore(client, repo)
    with caplog.at_level("WARNING", logger="guard.oci.registry"):
        assert push_model(insecure, model_dir, "v1").uploaded == 5
    assert any("plain HTTP" in r.getMessage() and "--insecure" in r.getMessage() for r in caplog.records)


def test_exec_bit_survives_and_manifest_is_reproducible(
    registry: RegistryServer, repo: str, model_dir: Path, tmp_path: Path
) -> None:
    (model_dir / "inference.py").chmod(0o755)
    ref = parse_reference(f"oci://{registry.host}/{repo}:v1")
    store = open_store(ref)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    first = push_model(store, model_dir, "v1", created=when)
    again = push_model(store, model_dir, "v1", created=when)
    assert first.descriptor.digest == again.descriptor.digest
    pull(store, ref, tmp_path / "out")
    assert (tmp_path / "out" / "inference.py").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "config.json").stat().st_mode & 0o111 == 0
