"""The admission verifier reads attestation referrers with the attestations capability's code
(guard.attest.oci): a referrer bound to another subject, or carrying no Sigstore bundle layer, is
reported as an invalid attestation in the facts (never skipped, never counted), against the real
registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guard.admission.ports import RuleMatch
from guard.admission.verifier import OciReferenceVerifier
from guard.config import parse_config
from guard.oci.push import push_bytes
from guard.oci.referrers import add_to_fallback_index
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.types import IN_TOTO_JSON, OCI_EMPTY, OCI_EMPTY_BYTES, OCI_MANIFEST, Descriptor, sha256_digest
from guard.testing.admission_registry import attach_provenance, publish_models

pytestmark = pytest.mark.registry

_EMPTY = {"mediaType": OCI_EMPTY, "digest": sha256_digest(OCI_EMPTY_BYTES), "size": len(OCI_EMPTY_BYTES)}


def _push_referrer(
    store: RegistryStore, listed_under: Descriptor, subject: Descriptor, layers: list[Any]
) -> str:
    """Push an in-toto referrer manifest whose ``subject`` is ``subject`` and list it among the
    referrers of ``listed_under`` (the fallback index, as guard attach does on this registry)."""
    push_bytes(store, OCI_EMPTY_BYTES)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": IN_TOTO_JSON,
            "config": _EMPTY,
            "layers": layers,
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        }
    ).encode()
    pushed, indexed = store.push_referrer(body, OCI_MANIFEST)
    if not indexed and store.referrers(listed_under.digest) is None:
        entry = Descriptor(OCI_MANIFEST, pushed.digest, pushed.size, IN_TOTO_JSON, {})
        add_to_fallback_index(store, listed_under.digest, entry)
    return pushed.digest


def test_unbound_and_layerless_referrers_are_invalid_attestations(registry: Any, tmp_path: Path) -> None:
    models = publish_models(registry.host, tmp_path / "models", prefix="verifier-referrers")
    store = RegistryStore.open(registry.host, "verifier-referrers/signed", RegistryAccess(), loopback=True)
    signed = store.resolve(models.signed_digest)
    other = Descriptor(signed.media_type, "sha256:" + "0" * 64, 10)
    attach_provenance(models.host, models.signed, models.signed_digest, models.private_key, tmp_path)
    no_layers = _push_referrer(store, signed, signed, [])
    wrong_subject = _push_referrer(store, signed, other, [])

    verifier = OciReferenceVerifier(parse_config(models.config()))
    artifact = verifier.verify(models.signed, models.signed_digest, RuleMatch(rule="models", trust_hash="t"))
    attestations = artifact.facts["attestations"]
    by_source = {entry.get("source"): entry for entry in attestations}
    layerless = by_source[f"referrer {no_layers}"]
    assert layerless["status"] == "invalid"
    assert "expected a Sigstore bundle layer, found no layers" in layerless["reason"]
    unbound = by_source[f"referrer {wrong_subject}"]
    assert unbound["status"] == "invalid"
    assert f"expected {models.signed_digest}" in unbound["reason"]
    # the real provenance still counts, and the subject is the one `guard facts oci://` reports
    assert any(e.get("name") == "provenance" and e.get("status") == "present" for e in attestations)
    subject = artifact.facts["subject"]
    assert subject["name"] == "oci://" + models.signed.rsplit(":", 1)[0]  # as `guard facts oci://` says
    assert subject["digest"] == {"sha256": models.signed_digest.split(":", 1)[1]}
