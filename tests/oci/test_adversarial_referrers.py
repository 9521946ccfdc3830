"""Issue 9: what someone with push access to a repository can attach, against the real registry.

Each test is a regression test of one way of getting an unsigned model admitted or a good one
refused: junk fallback indexes and descriptors (item 1), attestations taken for signatures
(item 2), referrer bombs (item 4), signature starvation (item 5), deeply nested JSON (item 8),
and the exit codes they give (item 12).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from guard.attest.oci import oci_attestation_inputs, oci_subject
from guard.cli import run
from guard.errors import RegistryError, UntrustedContentError, VerificationError
from guard.oci.push import push_bytes, push_model
from guard.oci.reference import parse_reference
from guard.oci.referrers import (
    PREDICATE_ANNOTATION,
    ReferrerLimits,
    attach,
    fallback_tag,
    load_attachment,
)
from guard.oci.store import open_store
from guard.oci.types import (
    IN_TOTO_JSON,
    OCI_CREATED,
    OCI_EMPTY,
    OCI_EMPTY_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE,
    Descriptor,
    FetchedManifest,
    Store,
    sha256_digest,
)
from guard.oci.verify import verify_oci
from guard.signing import KeySigner, KeyVerifier, sign_model, sign_statement
from guard.signing.types import OMS_PREDICATE_TYPE

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer


class CountingStore:
    """A Store proxy that counts manifests and blobs fetched."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.manifests: list[str] = []
        self.blobs: list[str] = []

    def fetch_manifest(self, reference: str) -> Any:
        self.manifests.append(reference)
        return self.inner.fetch_manifest(reference)

    def fetch_blob(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        self.blobs.append(digest)
        return self.inner.fetch_blob(digest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class JunkIndexStore(CountingStore):
    """The real registry, except that the fallback index reads back as ``index`` (raw JSON
    bytes): what a registry that stores any manifest under a tag (many do; docker-registry 2.8
    validates some on PUT) would serve to guard."""

    def __init__(self, inner: Store, subject: Descriptor) -> None:
        super().__init__(inner)
        self.tag = fallback_tag(subject.digest)
        self.body: bytes | None = None
        self.stored: dict[str, bytes] = {}  # digest -> a manifest this registry refuses on PUT

    def store_refused(self, body: bytes) -> Descriptor:
        """Serve ``body`` by its digest, as a registry that stores any manifest would."""
        self.stored[sha256_digest(body)] = body
        return Descriptor(OCI_MANIFEST, sha256_digest(body), len(body))

    def entries(self) -> list[Any]:
        return list(self.inner.fetch_manifest(self.tag).json()["manifests"])

    def serve(self, manifests: list[Any] | None = None, *, body: bytes | None = None) -> None:
        self.body = (
            body
            if body is not None
            else json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
        )

    def fetch_manifest(self, reference: str) -> Any:
        if reference == self.tag and self.body is not None:
            self.manifests.append(reference)
            return FetchedManifest(Descriptor(OCI_INDEX, sha256_digest(self.body), len(self.body)), self.body)
        if reference in self.stored:
            self.manifests.append(reference)
            body = self.stored[reference]
            return FetchedManifest(Descriptor(OCI_MANIFEST, reference, len(body)), body)
        return super().fetch_manifest(reference)


@pytest.fixture
def published(
    registry: RegistryServer, repo: str, model_dir: Path, keypair: tuple[Path, Path]
) -> tuple[str, JunkIndexStore, Descriptor]:
    """A model pushed with a good OMS signature attached, seen through a JunkIndexStore."""
    sign_model(model_dir, KeySigner.from_file(keypair[0]))
    ref = f"oci://{registry.host}/{repo}:v1"
    assert run(["push", str(model_dir), ref, "--signature", str(model_dir / "model.sig")]) == 0
    store = open_store(parse_reference(ref))
    subject = store.resolve("v1")
    return ref, JunkIndexStore(store, subject), subject


def _push(store: Store, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
    """Push junk as a pusher would (docker-registry 2.8 stores every junk pushed here; what it
    refuses on PUT is served by JunkIndexStore instead, and its refusal asserted)."""
    return store.push_manifest(body, media_type, tag)


def _add(store: JunkIndexStore, entries: list[Any]) -> None:
    """Serve the fallback index with ``entries`` (raw) after the real ones (newest last)."""
    store.serve(store.entries() + entries)


def _referrer(
    store: Store,
    subject: Descriptor,
    layer: dict[str, Any],
    *,
    artifact_type: str = SIGSTORE_BUNDLE,
    annotations: dict[str, str] | None = None,
) -> Descriptor:
    """Push a referrer manifest of ``subject`` holding ``layer`` (as written, junk or not)."""
    push_bytes(store, OCI_EMPTY_BYTES)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(OCI_EMPTY_BYTES), "size": 2},
            "layers": [layer],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
            "annotations": annotations or {},
        }
    ).encode()
    pushed = _push(store, body, OCI_MANIFEST)
    return Descriptor(OCI_MANIFEST, pushed.digest, pushed.size, artifact_type, annotations or {})


def _blob_layer(store: Store, data: bytes, media_type: str = SIGSTORE_BUNDLE) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": push_bytes(store, data), "size": len(data)}


def test_junk_fallback_tag_is_a_verification_failure_not_infrastructure(
    published: tuple[str, JunkIndexStore, Descriptor], keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    ref, store, subject = published
    # a real image manifest, tagged as the fallback tag: docker-registry stores it
    config = push_bytes(store.inner, OCI_EMPTY_BYTES)
    junk = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_EMPTY, "digest": config, "size": 2},
            "layers": [],
        }
    ).encode()
    _push(store.inner, junk, OCI_MANIFEST, fallback_tag(subject.digest))
    with pytest.raises(UntrustedContentError, match="not an image index of referrers"):
        verify_oci(parse_reference(ref), KeyVerifier.from_file(keypair[1]), store.inner)
    assert run(["verify", ref, "--key", str(keypair[1])]) == 1  # was 3 (registry error)
    for body in (b"[" * 100_000, b"not json", b'{"manifests": 3}', b'{"a": 1, "a": 2}'):
        store.serve(body=body)
        with pytest.raises(UntrustedContentError):
            verify_oci(parse_reference(ref), KeyVerifier.from_file(keypair[1]), store)


def test_a_descriptor_that_does_not_parse_is_skipped_and_the_good_signature_still_verifies(
    published: tuple[str, JunkIndexStore, Descriptor], keypair: tuple[Path, Path]
) -> None:
    ref, store, _subject = published
    bad = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256_digest(b"x"),
            "size": -1,
            "artifactType": SIGSTORE_BUNDLE,
        },
        {"mediaType": OCI_MANIFEST, "digest": "sha256:zz", "size": 1, "artifactType": SIGSTORE_BUNDLE},
        "not a descriptor",
    ]
    _add(store, bad)
    result = verify_oci(parse_reference(ref), KeyVerifier.from_file(keypair[1]), store)
    assert result.mode == "layers"


def test_an_attestation_referrer_with_a_bad_layer_descriptor_is_invalid_and_the_rest_are_read(
    published: tuple[str, JunkIndexStore, Descriptor], keypair: tuple[Path, Path]
) -> None:
    ref, store, subject = published
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": subject.digest.split(":")[1]}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {}, "runDetails": {}},
    }
    good_bundle = sign_statement(statement, KeySigner.from_file(keypair[0]))
    good = _referrer(store.inner, subject, _blob_layer(store.inner, good_bundle), artifact_type=IN_TOTO_JSON)
    bad_layer = {"mediaType": SIGSTORE_BUNDLE, "digest": push_bytes(store.inner, b"x"), "size": -1}
    junk = _referrer(store.inner, subject, bad_layer, artifact_type=IN_TOTO_JSON)
    _add(store, [good.to_json(), junk.to_json()])
    target = oci_subject(parse_reference(ref).with_digest(subject.digest), store)
    inputs, failed = oci_attestation_inputs(target)
    reasons = [o.reason or "" for o in failed]
    assert any("size" in r and "expected an integer" in r for r in reasons), reasons
    assert [i.source for i in inputs] == [f"referrer {good.digest}"]


def test_an_attestation_signed_by_the_trusted_key_is_not_a_signature(
    registry: RegistryServer, repo: str, model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    # issue 9 item 2: `guard attach --signature provenance.att.json` made an unsigned model admissible
    ref = f"oci://{registry.host}/{repo}:v1"
    store = open_store(parse_reference(ref))
    subject = push_model(store, model_dir, "v1").descriptor
    hexdigest = subject.digest.split(":")[1]
    for predicate in ("https://slsa.dev/provenance/v1", "https://example.com/verdict/v1"):
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "m", "digest": {"sha256": hexdigest}}],
            "predicateType": predicate,
            "predicate": {"verdict": "REJECTED"},
        }
        path = tmp_path / f"{hexdigest[:8]}-{len(predicate)}.att.json"
        path.write_bytes(sign_statement(statement, KeySigner.from_file(keypair[0])))
        attach(store, subject, load_attachment("signature", path))  # annotated with its predicate
        # and the same bytes pushed without the annotation: fetched, then refused by its predicate
        _referrer(store, subject, _blob_layer(store, path.read_bytes()))
    with pytest.raises(VerificationError):
        verify_oci(ref, KeyVerifier.from_file(keypair[1]))
    assert run(["verify", ref, "--key", str(keypair[1])]) == 1
    # a rule may name a predicate type that counts as a signature, explicitly
    result = verify_oci(
        ref, KeyVerifier.from_file(keypair[1]), extra_predicates=["https://example.com/verdict/v1"]
    )
    assert result.predicate_type == "https://example.com/verdict/v1"


def test_attestations_never_crowd_signatures_out_of_the_cap(
    published: tuple[str, JunkIndexStore, Descriptor], keypair: tuple[Path, Path]
) -> None:
    ref, store, _subject = published
    entries = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256_digest(f"att-{i}".encode()),
            "size": 10,
            "artifactType": SIGSTORE_BUNDLE,  # cosign v3 stores attestations as bundles too
            "annotations": {PREDICATE_ANNOTATION: "https://slsa.dev/provenance/v1"},
        }
        for i in range(200)
    ]
    _add(store, entries)
    result = verify_oci(parse_reference(ref), KeyVerifier.from_file(keypair[1]), store)
    assert result.mode == "layers"
    junk = {e["digest"] for e in entries}
    assert not junk & set(store.manifests), "an attestation referrer was fetched as a signature"


def test_junk_signatures_dated_in_the_future_do_not_starve_the_good_one(
    published: tuple[str, JunkIndexStore, Descriptor], keypair: tuple[Path, Path]
) -> None:
    # issue 9 item 5: sixteen junk referrers dated 9999-12-31 pushed the good one out of the 16 tried
    ref, store, subject = published
    junk = [
        _referrer(
            store.inner,
            subject,
            _blob_layer(store.inner, json.dumps({"mediaType": SIGSTORE_BUNDLE, "junk": i}).encode()),
            annotations={"org.opencontainers.image.created": "9999-12-31T00:00:00Z"},
        ).to_json()
        for i in range(20)
    ]
    _add(store, junk)  # newer in registry order than the good signature
    result = verify_oci(parse_reference(ref), KeyVerifier.from_file(keypair[1]), store)
    assert result.mode == "layers"
    # past the cap the answer says how many were not tried, and denies
    with pytest.raises(VerificationError, match=r"not tried \(cap 5\)") as err:
        verify_oci(
            parse_reference(ref),
            KeyVerifier.from_file(keypair[1]),
            store,
            limits=ReferrerLimits(max_signatures=5),
        )
    assert "junk referrers skipped" in str(err.value)


def test_a_referrer_bomb_reads_a_bounded_number_of_attestations(
    published: tuple[str, JunkIndexStore, Descriptor],
) -> None:
    # issue 9 item 4: 3,000 junk in-toto referrers were all fetched
    ref, store, subject = published
    entries = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256_digest(f"bomb-{i}".encode()),
            "size": 10,
            "artifactType": IN_TOTO_JSON,
            "annotations": {PREDICATE_ANNOTATION: f"https://example.com/p/{i % 7}"},
        }
        for i in range(3000)
    ]
    _add(store, entries)
    limits = ReferrerLimits()
    target = oci_subject(parse_reference(ref).with_digest(subject.digest), store)
    store.manifests.clear()
    _inputs, failed = oci_attestation_inputs(target, limits)
    assert len(store.manifests) <= limits.max_attestations + 1  # the listing, then the ones read
    assert any("were not read" in (o.reason or "") for o in failed)


def test_deeply_nested_signature_json_is_junk_and_the_good_signature_still_verifies(
    published: tuple[str, JunkIndexStore, Descriptor], keypair: tuple[Path, Path]
) -> None:
    # issue 9 item 8: 100,000 '[' raised RecursionError, which escaped every handler
    ref, store, subject = published
    entry = _referrer(store.inner, subject, _blob_layer(store.inner, b"[" * 100_000))
    _add(store, [entry.to_json()])
    assert verify_oci(parse_reference(ref), KeyVerifier.from_file(keypair[1]), store).mode == "layers"
    store.serve([entry.to_json()])  # alone: a verification failure, never a traceback
    with pytest.raises(UntrustedContentError, match="nested"):
        verify_oci(parse_reference(ref), KeyVerifier.from_file(keypair[1]), store)


@pytest.mark.parametrize(
    ("artifact_type", "predicate"),
    [(SIGSTORE_BUNDLE, OMS_PREDICATE_TYPE), (IN_TOTO_JSON, "https://slsa.dev/provenance/v1")],
    ids=["signature", "attestation"],
)
def test_a_layer_that_is_not_a_descriptor_refused_by_docker_registry_and_read_when_served(
    published: tuple[str, JunkIndexStore, Descriptor],
    keypair: tuple[Path, Path],
    artifact_type: str,
    predicate: str,
) -> None:
    # tests/adversarial/test_pushed_junk.py's "layer not a descriptor": docker-registry refuses it
    ref, store, subject = published
    annotations = {PREDICATE_ANNOTATION: predicate, OCI_CREATED: "9999-12-31T00:00:00Z"}
    push_bytes(store.inner, OCI_EMPTY_BYTES)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(OCI_EMPTY_BYTES), "size": 2},
            "layers": [{"mediaType": 7, "digest": "sha256:zz", "size": "big"}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
            "annotations": annotations,
        }
    ).encode()
    with pytest.raises(RegistryError, match="HTTP 400: MANIFEST_INVALID"):
        store.inner.push_manifest(body, OCI_MANIFEST, None)
    # served as a registry that stores it would, newest of all (tried first)
    junk = store.store_refused(body)
    _add(store, [Descriptor(OCI_MANIFEST, junk.digest, junk.size, artifact_type, annotations).to_json()])
    target = parse_reference(ref)
    assert verify_oci(target, KeyVerifier.from_file(keypair[1]), store).mode == "layers"  # the good one
    if artifact_type == IN_TOTO_JSON:
        inputs, failed = oci_attestation_inputs(oci_subject(target.with_digest(subject.digest), store))
        assert inputs == [] and [o.source for o in failed] == [f"referrer {junk.digest}"], failed
    assert junk.digest in store.manifests  # read, not passed over
