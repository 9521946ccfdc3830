"""cosign's legacy attestations: DSSE envelopes in layers, as ``cosign attest`` stored them before
v3 (and with ``--new-bundle-format=false``).

Where: the tag ``sha256-<hex>.att`` beside the artifact, or an OCI 1.1 referrer of artifactType
``application/vnd.in-toto+json`` whose layers are ``application/vnd.dsse.envelope.v1+json``
(guard's own attestations use the same artifactType with a Sigstore bundle layer: the reader
dispatches on the layer media type, never on the artifactType). Each layer is one attestation:
its blob the envelope, its annotations the keyless material (certificate, chain, Rekor bundle).

A key-signed envelope is verified by the attestations capability's ordinary path: it is wrapped,
unchanged, in a Sigstore bundle v0.3 with a bare ``publicKey`` (cosign names no key), so the key
verifier checks the DSSE signature and the statement's subject, predicate and schema are checked
as for any attestation. A keyless one (certificate annotation) carries only a Rekor SET over an
``intoto`` entry: guard does not verify those yet, and reports it invalid with that reason.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from guard.attest.collect import AttestationInput
from guard.attest.verify import AttestationOutcome
from guard.errors import NotFoundError, UntrustedContentError, VerificationError
from guard.oci.blobs import read_small_blob
from guard.oci.referrers import DSSE_ENVELOPE, fallback_tag
from guard.oci.types import Descriptor, Store
from guard.signing.types import BUNDLE_MEDIA_TYPE
from guard.untrusted import parse_object

CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
MAX_ENVELOPE_BYTES = 4 * 1024 * 1024


def att_tag(store: Store, digest: str) -> str | None:
    """The ``sha256-<hex>.att`` tag of ``digest`` when it exists."""
    tag = f"{fallback_tag(digest)}.att"
    try:
        store.resolve(tag)
    except NotFoundError:
        return None
    return tag


def dsse_layers(manifest: Mapping[str, Any], where: str) -> list[Descriptor]:
    """The DSSE envelope layers of a manifest (UntrustedContentError for a malformed one)."""
    raw = manifest.get("layers")
    if not isinstance(raw, list):
        raise UntrustedContentError(f"{where}: layers: expected a list")
    return [
        Descriptor.from_json(item, f"{where} layers[{i}]")
        for i, item in enumerate(raw)
        if isinstance(item, dict) and item.get("mediaType") == DSSE_ENVELOPE
    ]


def _invalid(source: str, reason: str, predicate_type: str = "unknown") -> AttestationOutcome:
    return AttestationOutcome(predicate_type, predicate_type, "invalid", reason, source)


def _claimed_predicate(envelope: Mapping[str, Any]) -> str:
    try:
        statement = parse_object(base64.b64decode(str(envelope.get("payload")), validate=True), "statement")
    except (UntrustedContentError, ValueError):
        return "unknown"
    value = statement.get("predicateType")
    return value if isinstance(value, str) else "unknown"


def dsse_inputs(
    store: Store, layers: list[Descriptor], where: str, *, max_layers: int
) -> list[AttestationInput | AttestationOutcome]:
    """One input (or invalid outcome, with the reason) per DSSE layer, at most ``max_layers``."""
    out: list[AttestationInput | AttestationOutcome] = []
    for i, layer in enumerate(layers[:max_layers]):
        source = f"cosign attestation {where} layers[{i}]"
        try:
            data = read_small_blob(store, layer, f"attestation {layer.digest}", limit=MAX_ENVELOPE_BYTES)
            envelope = parse_object(data, f"{source} DSSE envelope", max_bytes=MAX_ENVELOPE_BYTES)
        except (VerificationError, NotFoundError) as err:
            out.append(_invalid(source, f"cannot read the DSSE envelope: {err}"))
            continue
        if layer.annotations.get(CERTIFICATE_ANNOTATION):
            out.append(
                _invalid(
                    source,
                    "a keyless cosign legacy attestation (certificate and Rekor SET in annotations) is not "
                    "verified by guard; attest with cosign v3 (a Sigstore bundle) or with a key",
                    _claimed_predicate(envelope),
                )
            )
            continue
        bundle = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": {}},
            "dsseEnvelope": envelope,
        }
        out.append(AttestationInput(json.dumps(bundle).encode(), source))
    if len(layers) > max_layers:
        out.append(
            _invalid(f"cosign attestation {where}", f"{len(layers) - max_layers} more layers not read")
        )
    return out
