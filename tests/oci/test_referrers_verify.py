"""Referrers (attach / discover, fallback tag under concurrency) and verification without weights,
against the real registry and the OCI layout store."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from guard.cli import run
from guard.errors import IntegrityError, NotFoundError, SignatureMismatch, VerificationError
from guard.oci.push import push_model
from guard.oci.reference import parse_reference
from guard.oci.referrers import Attachment, attach, fallback_tag, list_referrers, load_attachment
from guard.oci.registry import RegistryStore
from guard.oci.store import open_store
from guard.oci.types import (
    CYCLONEDX_JSON,
    IN_TOTO_JSON,
    SIGSTORE_BUNDLE,
    Descriptor,
    FetchedManifest,
    Store,
    sha256_digest,
)
from guard.oci.verify import verify_oci
from guard.signing import KeySigner, KeyVerifier, sign_model, sign_statement

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer


class CountingStore:
    """A Store proxy that records every blob fetched (to prove no weight is downloaded)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.fetched: list[str] = []

    def fetch_blob(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        self.fetched.append(digest)
        return self.inner.fetch_blob(digest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _targets(registry: Any, repo: str, tmp_path: Path) -> list[str]:
    return [f"oci://{registry.host}/{repo}", f"oci-layout:{tmp_path / 'layout'}"]


@pytest.fixture(params=["registry", "layout"])
def base(request: pytest.FixtureRequest, repo: str, tmp_path: Path) -> str:
    if request.param == "layout":
        return f"oci-layout:{tmp_path / 'layout'}"
    registry = request.getfixturevalue("registry")
    request.applymarker(pytest.mark.registry)
    return f"oci://{registry.host}/{repo}"


def _sign(model_dir: Path, keypair: tuple[Path, Path]) -> Path:
    sign_model(model_dir, KeySigner.from_file(keypair[0]))
    return model_dir / "model.sig"


def test_push_with_signature_then_verify_fetches_no_weights(
    base: str, model_dir: Path, keypair: tuple[Path, Path]
) -> None:
    sig = _sign(model_dir, keypair)
    assert run(["push", str(model_dir), f"{base}:v1", "--signature", str(sig)]) == 0
    ref = parse_reference(f"{base}:v1")
    store = CountingStore(open_store(ref))
    result = verify_oci(ref, KeyVerifier.from_file(keypair[1]), store)
    assert result.mode == "layers" and result.artifact_kind == "modelpack"
    assert set(result.files) == {
        "config.json",
        "model.safetensors",
        "tokenizer/tokenizer.json",
        "README.md",
        "inference.py",
    }
    assert result.digest == store.resolve("v1").digest
    assert result.signer.method == "key"
    manifest = store.fetch_manifest(result.digest).json()
    layer_digests = {layer["digest"] for layer in manifest["layers"]}
    assert not layer_digests & set(store.fetched), "a model layer blob was fetched"
    assert len(store.fetched) == 1  # the signature bundle only


def test_cli_attach_discover(
    base: str, model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sig = _sign(model_dir, keypair)
    assert run(["push", str(model_dir), f"{base}:v1"]) == 0
    digest = capsys.readouterr().out.strip()
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}))
    statement = tmp_path / "att.json"
    statement.write_text(
        json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [],
                "predicateType": "https://slsa.dev/provenance/v1",
                "predicate": {},
            }
        )
    )
    assert (
        run(
            [
                "attach",
                f"{base}:v1",
                "--signature",
                str(sig),
                "--sbom",
                str(sbom),
                "--attestation",
                str(statement),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert run(["discover", f"{base}@{digest}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["subject"] == digest
    types = sorted(r["artifactType"] for r in doc["referrers"])
    assert types == sorted([SIGSTORE_BUNDLE, CYCLONEDX_JSON, IN_TOTO_JSON])
    att = next(r for r in doc["referrers"] if r["artifactType"] == IN_TOTO_JSON)
    assert att["annotations"]["dev.sigstore.bundle.predicateType"] == "https://slsa.dev/provenance/v1"
    assert run(["discover", f"{base}:v1"]) == 0
    table = capsys.readouterr().out
    assert CYCLONEDX_JSON in table and "bom.json" in table


def test_attach_refuses_files_of_the_wrong_kind(
    base: str, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["push", str(model_dir), f"{base}:v1"]) == 0
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}')
    assert run(["attach", f"{base}:v1", "--signature", str(bogus)]) == 2
    assert "expected a Sigstore bundle" in capsys.readouterr().err
    assert run(["attach", f"{base}:v1", "--sbom", str(bogus)]) == 2
    assert run(["attach", f"{base}:v1"]) == 2


def test_verify_reports_files_that_differ_from_the_signature(
    base: str, model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    sig = _sign(model_dir, keypair)
    (model_dir / "model.safetensors").write_bytes(b"swapped weights")  # pushed bytes differ from signed
    (model_dir / "extra.py").write_text("x = 1\n")
    assert run(["push", str(model_dir), f"{base}:v1"]) == 0  # push without checking ...
    assert run(["attach", f"{base}:v1", "--signature", str(sig)]) == 0  # ... attach the old signature
    with pytest.raises(IntegrityError) as info:
        verify_oci(f"{base}:v1", KeyVerifier.from_file(keypair[1]))
    assert info.value.changed == ("model.safetensors",)
    assert info.value.added == ("extra.py",)


def test_verify_with_the_wrong_key_fails(
    base: str, model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    from guard.signing.keys import generate_keypair

    sig = _sign(model_dir, keypair)
    assert run(["push", str(model_dir), f"{base}:v1", "--signature", str(sig)]) == 0
    other = generate_keypair(tmp_path / "other")
    with pytest.raises(SignatureMismatch):
        verify_oci(f"{base}:v1", KeyVerifier.from_file(other.public_key))


def test_verify_without_signature_is_a_verification_failure(
    base: str, model_dir: Path, keypair: tuple[Path, Path]
) -> None:
    assert run(["push", str(model_dir), f"{base}:v1"]) == 0
    with pytest.raises(VerificationError, match="no signature is attached"):
        verify_oci(f"{base}:v1", KeyVerifier.from_file(keypair[1]))


def test_signature_over_the_manifest_digest(
    base: str, model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    ref = parse_reference(f"{base}:v1")
    store = open_store(ref, create=True)
    pushed = push_model(store, model_dir, "v1").descriptor
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "modelcar", "digest": {"sha256": pushed.digest.split(":")[1]}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    bundle = tmp_path / "image.sig"
    bundle.write_bytes(sign_statement(statement, KeySigner.from_file(keypair[0])))
    attach(store, pushed, load_attachment("signature", bundle))
    result = verify_oci(ref, KeyVerifier.from_file(keypair[1]), store)
    assert result.mode == "manifest-digest" and result.digest == pushed.digest
    # the same signature does not verify another manifest
    (model_dir / "more.md").write_text("other\n")
    other = push_model(store, model_dir, "v2").descriptor
    attach(store, other, load_attachment("signature", bundle))
    with pytest.raises(IntegrityError, match="not the manifest"):
        verify_oci(parse_reference(f"{base}:v2"), KeyVerifier.from_file(keypair[1]), store)


@pytest.mark.registry
def test_two_concurrent_attachers_keep_every_entry(
    registry: RegistryServer, repo: str, model_dir: Path
) -> None:
    ref = parse_reference(f"oci://{registry.host}/{repo}:v1")
    subject = push_model(open_store(ref), model_dir, "v1").descriptor
    per_client = 4
    start = threading.Barrier(2)
    errors: list[BaseException] = []
    made: list[Descriptor] = []
    lock = threading.Lock()

    def attacher(client: int) -> None:
        store = open_store(ref)  # each client has its own connection and auth state
        try:
            start.wait(timeout=30)
            for i in range(per_client):
                body = json.dumps(
                    {"bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": f"urn:uuid:{client}-{i}"}
                ).encode()
                item = Attachment(
                    "sbom",
                    body,
                    CYCLONEDX_JSON,
                    CYCLONEDX_JSON,
                    f"bom-{client}-{i}.json",
                    {"org.opencontainers.image.title": f"bom-{client}-{i}.json"},
                )
                entry = attach(store, subject, item, settle=0.05)
                with lock:
                    made.append(entry)
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=attacher, args=(c,)) for c in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(made) == 2 * per_client
    listed = {d.digest for d in list_referrers(open_store(ref), subject.digest)}
    assert listed == {d.digest for d in made}
    # the registry has no Referrers API: the entries live in the fallback tag index
    store = open_store(ref)
    assert store.referrers(subject.digest) is None
    index = store.fetch_manifest(fallback_tag(subject.digest)).json()
    assert len(index["manifests"]) == 2 * per_client


def test_layout_is_readable_by_the_oci_layout_spec(tmp_path: Path, model_dir: Path) -> None:
    layout = tmp_path / "layout"
    assert run(["push", str(model_dir), f"oci-layout:{layout}:v1"]) == 0
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    hexdigest = entry["digest"].split(":")[1]
    assert (layout / "blobs" / "sha256" / hexdigest).is_file()


@pytest.mark.registry
def test_attacher_with_a_stale_read_rereads_instead_of_dropping_an_entry(
    registry: RegistryServer, repo: str, model_dir: Path
) -> None:
    """The worst interleaving, made deterministic: client B attaches completely (writes and
    confirms) between client A's read of the fallback index and A's write. A must notice its read
    is stale and merge B's entry instead of writing over it."""
    ref = parse_reference(f"oci://{registry.host}/{repo}:v1")
    subject = push_model(open_store(ref), model_dir, "v1").descriptor
    tag = fallback_tag(subject.digest)

    def item(name: str) -> Attachment:
        body = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": name}).encode()
        return Attachment("sbom", body, CYCLONEDX_JSON, CYCLONEDX_JSON, name, {})

    b_entries: list[Descriptor] = []

    class FirstReadMissing(CountingStore):
        """A's first read finds no index (as read before B wrote); B then attaches completely."""

        interleaved = False

        def fetch_manifest(self, reference: str) -> FetchedManifest:
            if reference == tag and not self.interleaved:
                self.interleaved = True
                b_entries.append(attach(open_store(ref), subject, item("b"), settle=0.05))
                raise NotFoundError("index not there yet")
            return self.inner.fetch_manifest(reference)

    a_store = FirstReadMissing(open_store(ref))
    a_entry = attach(a_store, subject, item("a"), settle=0.05)
    assert a_store.interleaved and len(b_entries) == 1
    listed = {d.digest for d in list_referrers(open_store(ref), subject.digest)}
    assert listed == {a_entry.digest, b_entries[0].digest}


def test_cli_verify_delegates_for_oci_targets(
    base: str, model_dir: Path, keypair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sig = _sign(model_dir, keypair)
    assert run(["push", str(model_dir), f"{base}:v1", "--signature", str(sig)]) == 0
    digest = capsys.readouterr().out.strip()
    assert run(["verify", f"{base}:v1", "--key", str(keypair[1]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["digest"] == digest and doc["mode"] == "layers" and len(doc["files"]) == 5
    assert run(["verify", f"{base}@{digest}", "--key", str(keypair[1])]) == 0
    assert f"digest: {digest}" in capsys.readouterr().out
    # an unsigned artifact in the same store: exit 1 with a message
    (model_dir / "new.md").write_text("x\n")
    assert run(["push", str(model_dir), f"{base}:unsigned"]) == 0
    capsys.readouterr()
    assert run(["verify", f"{base}:unsigned", "--key", str(keypair[1])]) == 1
    assert "no signature is attached" in capsys.readouterr().err


def test_push_with_a_signature_that_does_not_match_uploads_nothing(
    base: str, model_dir: Path, keypair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sig = _sign(model_dir, keypair)
    (model_dir / "config.json").write_text('{"changed": true}')
    assert run(["push", str(model_dir), f"{base}:v1", "--signature", str(sig)]) == 1
    assert "config.json" in capsys.readouterr().err
    store = open_store(parse_reference(base), create=True)
    with pytest.raises(NotFoundError):
        store.resolve("v1")


def test_push_selects_files_with_the_signature_ignore_rules(
    base: str, model_dir: Path, keypair: tuple[Path, Path]
) -> None:
    from guard.signing import Serialization
    from guard.signing.types import DEFAULT_IGNORE_PATHS

    (model_dir / "scratch").mkdir()
    (model_dir / "scratch" / "notes.txt").write_text("not part of the model\n")
    serialization = Serialization(ignore_paths=(*DEFAULT_IGNORE_PATHS, "scratch"))
    sign_model(model_dir, KeySigner.from_file(keypair[0]), serialization=serialization)
    assert run(["push", str(model_dir), f"{base}:v1", "--signature", str(model_dir / "model.sig")]) == 0
    result = verify_oci(f"{base}:v1", KeyVerifier.from_file(keypair[1]))
    assert "scratch/notes.txt" not in result.files and len(result.files) == 5


def test_push_after_sign_hashes_no_byte_again(
    base: str, model_dir: Path, keypair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from guard.signing import DigestCache

    with DigestCache.default() as cache:
        sign_model(model_dir, KeySigner.from_file(keypair[0]), cache=cache)

    def no_hashing(*args: object, **kwargs: object) -> str:
        raise AssertionError("a file was hashed again")

    monkeypatch.setattr("guard.signing.hashing._hash_unit", no_hashing)
    assert run(["push", str(model_dir), f"{base}:v1", "--signature", str(model_dir / "model.sig")]) == 0


@pytest.mark.registry
def test_verify_oci_is_thread_safe_on_a_shared_store(
    registry: RegistryServer, repo: str, model_dir: Path, keypair: tuple[Path, Path]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sig = _sign(model_dir, keypair)
    target = f"oci://{registry.host}/{repo}:v1"
    assert run(["push", str(model_dir), target, "--signature", str(sig)]) == 0
    ref = parse_reference(target)
    store = open_store(ref)
    verifier = KeyVerifier.from_file(keypair[1])
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: verify_oci(ref, verifier, store), range(16)))
    assert len({r.digest for r in results}) == 1 and all(r.mode == "layers" for r in results)


@pytest.mark.registry
def test_registry_with_a_referrers_api_needs_no_fallback_tag(
    registry: RegistryServer, repo: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """distribution 2.8 has no Referrers API; emulate one on top of it (OCI-Subject on push, an
    index from /referrers/) and check guard uses it instead of the fallback tag."""
    import requests

    ref = parse_reference(f"oci://{registry.host}/{repo}:v1")
    store = open_store(ref)
    assert isinstance(store, RegistryStore)
    subject = push_model(store, model_dir, "v1").descriptor
    pushed: list[dict[str, Any]] = []
    real = store.client.request

    def request(method: str, path: str, **kwargs: Any) -> requests.Response:
        if method == "GET" and "/referrers/" in path:
            response = requests.Response()
            response.status_code = 200
            response._content = json.dumps({"schemaVersion": 2, "manifests": pushed}).encode()
            return response
        response = real(method, path, **kwargs)
        if method == "PUT" and "/manifests/" in path and b'"subject"' in (kwargs.get("data") or b""):
            response.headers["OCI-Subject"] = subject.digest
            body = kwargs["data"]
            pushed.append(
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha256_digest(body),
                    "size": len(body),
                    "artifactType": json.loads(body)["artifactType"],
                }
            )
        return response

    monkeypatch.setattr(store.client, "request", request)
    body = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6"}).encode()
    entry = attach(store, subject, Attachment("sbom", body, CYCLONEDX_JSON, CYCLONEDX_JSON, "b.json", {}))
    assert [d.digest for d in list_referrers(store, subject.digest)] == [entry.digest]
    with pytest.raises(NotFoundError):
        store.fetch_manifest(fallback_tag(subject.digest))


def test_discover_lists_cosign_legacy_tags(
    base: str, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.oci.push import push_bytes
    from guard.oci.types import OCI_MANIFEST

    assert run(["push", str(model_dir), f"{base}:v1"]) == 0
    digest = capsys.readouterr().out.strip()
    store = open_store(parse_reference(base))
    payload = b'{"critical": {}}'
    config = b"{}"
    cosign = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": push_bytes(store, config),
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": push_bytes(store, payload),
                "size": len(payload),
            }
        ],
    }
    tag = fallback_tag(digest) + ".sig"
    sig = store.push_manifest(json.dumps(cosign).encode(), OCI_MANIFEST, tag)
    assert run(["discover", f"{base}:v1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["referrers"] == []
    assert [(t["tag"], t["digest"]) for t in doc["cosignLegacyTags"]] == [(tag, sig.digest)]
    assert run(["discover", f"{base}:v1"]) == 0
    out = capsys.readouterr().out
    assert tag in out and "no referrers attached" in out


def test_pull_with_trust_options_verifies_first(
    base: str, model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.signing.keys import generate_keypair

    sig = _sign(model_dir, keypair)
    assert run(["push", str(model_dir), f"{base}:v1", "--signature", str(sig)]) == 0
    digest = capsys.readouterr().out.strip()
    out = tmp_path / "verified"
    assert run(["pull", f"{base}:v1", str(out), "--key", str(keypair[1])]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == digest and "signed by" in captured.err
    assert (out / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    other = generate_keypair(tmp_path / "other")
    refused = tmp_path / "refused"
    assert run(["pull", f"{base}:v1", str(refused), "--key", str(other.public_key)]) == 1
    assert not refused.exists()


def test_a_signature_reattached_to_a_manifest_with_a_foreign_layer_is_a_verification_failure(
    model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    """The manifest is whoever pushed it: a layer guard does not know (a tar layer of a
    container image slipped into the model) is a verification failure, never an
    infrastructure error (the webhook lets a fail-open rule allow those)."""
    base = f"oci-layout:{tmp_path / 'layout'}"
    sig = _sign(model_dir, keypair)
    assert run(["push", str(model_dir), f"{base}:v1", "--signature", str(sig)]) == 0
    store = open_store(parse_reference(f"{base}:v1"))
    manifest = store.fetch_manifest(store.resolve("v1").digest).json()
    extra = b"#!/bin/sh\n"
    store.push_blob(sha256_digest(extra), len(extra), lambda: io.BytesIO(extra))
    manifest["layers"].append(
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": sha256_digest(extra),
            "size": len(extra),
        }
    )
    store.push_manifest(json.dumps(manifest).encode(), manifest["mediaType"], "v2")
    assert run(["attach", f"{base}:v2", "--signature", str(sig)]) == 0
    with pytest.raises(VerificationError, match="unexpected media type"):
        verify_oci(f"{base}:v2", KeyVerifier.from_file(keypair[1]))


def _junk_signature(store: Store, subject: Descriptor) -> None:
    """A signature referrer, newest of all, whose bundle layer descriptor is malformed: anyone
    who can push to the repository can attach one."""
    from guard.oci.types import OCI_CREATED, OCI_EMPTY, OCI_MANIFEST

    referrer = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGSTORE_BUNDLE,
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [{"mediaType": SIGSTORE_BUNDLE, "digest": "sha256:" + "0" * 64, "size": -1}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {OCI_CREATED: "9999-01-01T00:00:00Z"},
    }
    store.push_referrer(json.dumps(referrer).encode(), OCI_MANIFEST)


def test_a_malformed_signature_referrer_is_a_verification_failure_and_does_not_hide_a_good_one(
    model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    base = f"oci-layout:{tmp_path / 'layout'}"
    verifier = KeyVerifier.from_file(keypair[1])
    assert run(["push", str(model_dir), f"{base}:v1"]) == 0
    store = open_store(parse_reference(f"{base}:v1"))
    _junk_signature(store, store.resolve("v1"))
    with pytest.raises(VerificationError, match="size"):
        verify_oci(f"{base}:v1", verifier)  # not RegistryError: the webhook fails those open
    sig = _sign(model_dir, keypair)
    assert run(["attach", f"{base}:v1", "--signature", str(sig)]) == 0
    assert verify_oci(f"{base}:v1", verifier).mode == "layers"


def test_a_legacy_file_digest_equal_to_the_manifest_digest_does_not_bind_the_manifest(
    model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    """v0.2 model signatures list files as subjects: a signed file whose bytes are a manifest
    (a contributed file, say) must not vouch for that manifest and every layer it names."""
    from guard.signing.types import LEGACY_PREDICATE_TYPE

    base = f"oci-layout:{tmp_path / 'layout'}"
    assert run(["push", str(model_dir), f"{base}:v1"]) == 0
    store = open_store(parse_reference(f"{base}:v1"))
    manifest = store.fetch_manifest(store.resolve("v1").digest)
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "notes.json", "digest": {"sha256": sha256_digest(manifest.body).split(":")[1]}}],
        "predicateType": LEGACY_PREDICATE_TYPE,
        "predicate": {},
    }
    bundle = tmp_path / "legacy.sig"
    bundle.write_bytes(sign_statement(statement, KeySigner.from_file(keypair[0])))
    assert run(["attach", f"{base}:v1", "--signature", str(bundle)]) == 0
    with pytest.raises(IntegrityError):
        verify_oci(f"{base}:v1", KeyVerifier.from_file(keypair[1]))
