"""cosign's legacy attestations (DSSE envelope layers under ``sha256-<hex>.att``, or an OCI 1.1
in-toto referrer with DSSE layers) feed model facts and a rule's ``required_attestations``; the
reader dispatches on the layer media type. The fixtures hold no cosign attestation, so the
envelopes here are made the way ``cosign attest --key`` makes them, on a real cosign-signed
image of the fixtures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.admission.ports import RuleMatch
from guard.admission.verifier import OciReferenceVerifier
from guard.attest.oci import oci_facts
from guard.attest.specs import load_spec_file
from guard.config import parse_config
from guard.errors import AttestationError
from guard.oci.layout import LayoutStore
from guard.oci.push import push_bytes
from guard.oci.referrers import DSSE_ENVELOPE, add_to_fallback_index, fallback_tag
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.types import (
    DOCKER_MANIFEST,
    IN_TOTO_JSON,
    OCI_EMPTY,
    OCI_EMPTY_BYTES,
    OCI_MANIFEST,
    Descriptor,
    Store,
    sha256_digest,
)
from guard.signing import KeyVerifier
from guard.signing.dsse import pae
from guard.testing import cosign_fixtures as cf

FIXTURES = cf.fixtures_dir(Path(__file__).resolve().parents[2])
SLSA = "https://slsa.dev/provenance/v1"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"cosign fixtures not found at {FIXTURES}")


def _key(tmp_path: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / f"{name}.pub"
    public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def _envelope(private: ec.EllipticCurvePrivateKey, digest: str) -> bytes:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "index.docker.io/securesystemsengineering/testimage", "digest": {"sha256": digest[7:]}}
        ],
        "predicateType": SLSA,
        "predicate": load_spec_file("slsa-provenance/v1", "example.json"),
    }
    payload = json.dumps(statement, separators=(",", ":")).encode()
    sig = private.sign(pae(IN_TOTO_JSON, payload), ec.ECDSA(hashes.SHA256()))
    envelope = {
        "payloadType": IN_TOTO_JSON,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }
    return json.dumps(envelope).encode()


def _att_manifest(
    store: Store,
    envelopes: list[bytes],
    annotations: dict[str, str] | None = None,
    subject: cf.LegacyImage | None = None,
) -> bytes:
    push_bytes(store, OCI_EMPTY_BYTES)
    layers = []
    for envelope in envelopes:
        layers.append(
            {
                "mediaType": DSSE_ENVELOPE,
                "digest": push_bytes(store, envelope),
                "size": len(envelope),
                "annotations": {
                    "dev.cosignproject.cosign/signature": "",
                    "predicateType": SLSA,
                    **(annotations or {}),
                },
            }
        )
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(OCI_EMPTY_BYTES), "size": 2},
        "layers": layers,
    }
    if subject is not None:
        manifest["artifactType"] = IN_TOTO_JSON
        manifest["subject"] = {
            "mediaType": DOCKER_MANIFEST,
            "digest": subject.digest,
            "size": len(subject.manifest),
        }
    return json.dumps(manifest).encode()


@pytest.fixture
def image(tmp_path: Path) -> tuple[LayoutStore, Path, cf.LegacyImage]:
    layout = tmp_path / "layout"
    store = LayoutStore(layout, create=True)
    alice = {i.tag: i for i in cf.legacy_images(FIXTURES / cf.LEGACY_KEY)}["multi-cosigned-alice"]
    cf.load_into_store(store, alice)
    return store, layout, alice


def _provenance(facts: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in facts["attestations"] if a["predicateType"] == SLSA and a.get("source")]


def test_att_tag_feeds_facts_and_a_wrong_key_is_invalid(image: Any, tmp_path: Path) -> None:
    store, layout, alice = image
    private, public = _key(tmp_path, "att")
    store.push_manifest(
        _att_manifest(store, [_envelope(private, alice.digest)]),
        OCI_MANIFEST,
        f"{fallback_tag(alice.digest)}.att",
    )
    ref = f"oci-layout:{layout}:{alice.tag}"
    facts = oci_facts(ref, KeyVerifier.from_file(public), store).to_json()
    [entry] = _provenance(facts)
    assert entry["status"] == "present" and entry["source"].startswith("cosign attestation tag sha256-")
    assert facts["provenance"]["builder"]  # the predicate's facts were taken
    _, other = _key(tmp_path, "other")
    [refused] = _provenance(oci_facts(ref, KeyVerifier.from_file(other), store).to_json())
    assert refused["status"] == "invalid" and "does not verify" in refused["reason"]


def test_att_of_another_image_is_invalid(image: Any, tmp_path: Path) -> None:
    store, layout, alice = image
    private, public = _key(tmp_path, "att")
    other_digest = "sha256:" + "2" * 64
    store.push_manifest(
        _att_manifest(store, [_envelope(private, other_digest)]),
        OCI_MANIFEST,
        f"{fallback_tag(alice.digest)}.att",
    )
    [entry] = _provenance(
        oci_facts(f"oci-layout:{layout}:{alice.tag}", KeyVerifier.from_file(public), store).to_json()
    )
    assert entry["status"] == "invalid" and alice.digest[7:] in entry["reason"]


def test_keyless_legacy_attestation_is_reported_not_trusted(image: Any, tmp_path: Path) -> None:
    store, layout, alice = image
    private, public = _key(tmp_path, "att")
    body = _att_manifest(
        store,
        [_envelope(private, alice.digest)],
        {"dev.sigstore.cosign/certificate": "-----BEGIN CERTIFICATE-----"},
    )
    store.push_manifest(body, OCI_MANIFEST, f"{fallback_tag(alice.digest)}.att")
    [entry] = _provenance(
        oci_facts(f"oci-layout:{layout}:{alice.tag}", KeyVerifier.from_file(public), store).to_json()
    )
    assert entry["status"] == "invalid" and "keyless cosign legacy attestation" in entry["reason"]


@pytest.mark.registry
def test_oci11_dsse_referrer_satisfies_required_attestations(registry: Any, tmp_path: Path) -> None:
    """In admission, against docker-registry: the image's cosign signature (alice) and a cosign
    DSSE attestation referrer (guard's own artifactType, a DSSE layer) for a rule requiring
    provenance; the same referrer signed by another key does not satisfy it."""
    repo = "cosign-att/testimage"
    store = RegistryStore.open(registry.host, repo, RegistryAccess(), loopback=True)
    alice = {i.tag: i for i in cf.legacy_images(FIXTURES / cf.LEGACY_KEY)}["multi-cosigned-alice"]
    cf.load_into_registry(store, registry.root / "storage", repo, alice)
    private, public = _key(tmp_path, "builder")
    body = _att_manifest(store, [_envelope(private, alice.digest)], subject=alice)
    pushed, indexed = store.push_referrer(body, OCI_MANIFEST)
    if not indexed:
        add_to_fallback_index(
            store,
            alice.digest,
            Descriptor(OCI_MANIFEST, pushed.digest, pushed.size, IN_TOTO_JSON),
            settle=0.01,
        )

    def config(builder: Path) -> dict[str, Any]:
        return {
            "authorities": {
                "alice": {"kind": "key", "key": str(FIXTURES / cf.LEGACY_KEY / "alice.pub")},
                "builder": {"kind": "key", "key": str(builder)},
            },
            "rules": [
                {
                    "name": "images",
                    "artifacts": [f"{registry.host}/{repo}"],
                    "authorities": ["alice", "builder"],
                    "requiredAttestations": ["provenance"],
                }
            ],
        }

    reference = f"{registry.host}/{repo}@{alice.digest}"
    match = RuleMatch(rule="images", trust_hash="t")
    artifact = OciReferenceVerifier(parse_config(config(public))).verify(reference, alice.digest, match)
    [entry] = _provenance(dict(artifact.facts))
    assert entry["status"] == "present" and entry["source"] == f"cosign attestation {pushed.digest} layers[0]"
    assert artifact.signers[0].details["format"] == "cosign-legacy"
    _, stranger = _key(tmp_path, "stranger")
    with pytest.raises(AttestationError, match="requires a valid provenance"):
        OciReferenceVerifier(parse_config(config(stranger))).verify(reference, alice.digest, match)
