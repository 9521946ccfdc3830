"""cosign's legacy "simple signing" signatures in a registry: find them, bind them, verify them.

Where cosign (before v3, and v3 with ``--new-bundle-format=false``) stores them:

- the tag ``sha256-<hex>.sig`` beside the image: an image manifest whose layers are
  ``application/vnd.dev.cosign.simplesigning.v1+json`` (one layer per signer, ``cosign sign``
  appends), or
- the OCI 1.1 variant: a referrer of artifactType ``application/vnd.dev.cosign.artifact.sig.v1+json``
  with the same layers (its ``subject`` must be the image).

Each layer is one signature: its blob is the payload (``{"critical": {"identity":
{"docker-reference"}, "image": {"docker-manifest-digest"}, "type": "cosign container image
signature"}, "optional": ...}``) and its annotations carry the signature and, for keyless, the
certificate, chain and Rekor bundle. A layer binds the image only through
``critical.image.docker-manifest-digest``, checked here against the digest being admitted, and
``critical.type``. ``critical.identity.docker-reference`` is reported, not enforced (cosign does
not enforce it either: images are signed under one name and mirrored under others).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass

from guard.errors import (
    BundleFormatError,
    IntegrityError,
    NotFoundError,
    RegistryError,
    UntrustedContentError,
    VerificationError,
)
from guard.oci.blobs import read_small_blob
from guard.oci.referrers import COSIGN_SIGNATURE, fallback_tag
from guard.oci.types import Descriptor, Store, subject_digest
from guard.signing.types import (
    SIMPLE_SIGNING_TYPE,
    SignerInfo,
    SimpleSignature,
    SimpleSigningVerifier,
    Verifier,
)
from guard.untrusted import parse_object

COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
TIMESTAMP_ANNOTATION = "dev.sigstore.cosign/rfc3161timestamp"
MAX_PAYLOAD_BYTES = 64 * 1024  # cosign payloads are a few hundred bytes; optional claims a little more
MAX_ANNOTATION_CHARS = 64 * 1024


@dataclass(frozen=True)
class LegacySource:
    """Where a simple-signing manifest was found: the ``.sig`` tag, or an OCI 1.1 referrer."""

    where: str  # "tag sha256-<hex>.sig" or "referrer sha256:..."
    reference: str  # the tag or digest to fetch
    referrer: bool  # an OCI 1.1 referrer: its subject must be the image


@dataclass(frozen=True)
class LegacyVerified:
    signer: SignerInfo
    manifest_digest: str
    layer: int
    docker_reference: str | None


@dataclass(frozen=True)
class LegacyUntried:
    """How many signatures (layers) of a manifest the cap left untried."""

    count: int


def legacy_sources(store: Store, digest: str, referrers: list[Descriptor]) -> list[LegacySource]:
    """The places simple signatures of ``digest`` may be: OCI 1.1 referrers of the cosign
    signature artifactType (newest first, as listed), then the ``.sig`` tag if it exists."""
    found = [
        LegacySource(f"referrer {d.digest}", d.digest, True)
        for d in referrers
        if d.artifact_type == COSIGN_SIG_ARTIFACT
    ]
    tag = f"{fallback_tag(digest)}.sig"
    try:
        store.resolve(tag)
    except NotFoundError:
        return found
    return [*found, LegacySource(f"tag {tag}", tag, False)]


def _annotation(layer: Descriptor, key: str) -> str | None:
    value = layer.annotations.get(key)
    if value is not None and len(value) > MAX_ANNOTATION_CHARS:
        raise UntrustedContentError(f"layer annotation {key}: more than {MAX_ANNOTATION_CHARS} characters")
    return value


def _layers(store: Store, source: LegacySource, subject: str) -> tuple[str, list[Descriptor]]:
    """The simple-signing layers of the manifest ``source`` names (its subject checked for a
    referrer). A manifest that is not one is untrusted content."""
    fetched = store.fetch_manifest(source.reference)
    manifest = fetched.json()
    if source.referrer:
        bound = subject_digest(manifest)
        if bound != subject:
            raise VerificationError(
                f"cosign signature {source.where} is listed for {subject} but its subject is "
                f"{str(bound)[:80]!r}"
            )
    raw = manifest.get("layers")
    if not isinstance(raw, list):
        raise UntrustedContentError(f"cosign signature manifest {source.where}: layers: expected a list")
    layers = []
    for i, item in enumerate(raw):
        try:
            desc = Descriptor.from_json(item, f"{source.where} layers[{i}]")
        except RegistryError as err:
            raise UntrustedContentError(
                f"cosign signature manifest {source.where} is malformed: {err}"
            ) from err
        if desc.media_type == COSIGN_SIGNATURE:
            layers.append(desc)
    if not layers:
        raise BundleFormatError(f"cosign signature manifest {source.where} holds no {COSIGN_SIGNATURE} layer")
    return fetched.descriptor.digest, layers


def _payload_binding(payload: bytes, where: str, subject: str) -> str | None:
    """Check the payload names ``subject`` and is a cosign image signature; return its
    docker-reference (reported only)."""
    doc = parse_object(payload, f"cosign payload {where}", max_bytes=MAX_PAYLOAD_BYTES)
    critical = doc.get("critical")
    if not isinstance(critical, dict):
        raise UntrustedContentError(f"cosign payload {where}: critical: expected an object")
    kind = critical.get("type")
    if kind != SIMPLE_SIGNING_TYPE:
        raise UntrustedContentError(
            f"cosign payload {where}: critical.type: expected {SIMPLE_SIGNING_TYPE!r}, found "
            f"{str(kind)[:80]!r}"
        )
    image = critical.get("image")
    signed = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if signed != subject:
        raise IntegrityError(
            f"cosign signature {where} signs {str(signed)[:80]!r}, not the manifest {subject}",
            changed=[subject],
        )
    identity = critical.get("identity")
    reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    return reference if isinstance(reference, str) else None


def _simple_signature(
    store: Store, layer: Descriptor, where: str, payloads: dict[str, bytes]
) -> tuple[SimpleSignature, bytes]:
    encoded = _annotation(layer, SIGNATURE_ANNOTATION)
    if not encoded:
        raise BundleFormatError(f"cosign signature {where} has no {SIGNATURE_ANNOTATION} annotation")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as err:
        raise BundleFormatError(
            f"cosign signature {where}: {SIGNATURE_ANNOTATION} is not base64 ({err})"
        ) from err
    # signers of the same image share one payload blob: fetched (and digest-checked) once
    payload = payloads.get(layer.digest)
    if payload is None:
        payload = read_small_blob(store, layer, f"cosign payload {layer.digest}", limit=MAX_PAYLOAD_BYTES)
        payloads[layer.digest] = payload
    return (
        SimpleSignature(
            payload=payload,
            signature=signature,
            where=where,
            certificate=_annotation(layer, CERTIFICATE_ANNOTATION),
            chain=_annotation(layer, CHAIN_ANNOTATION),
            rekor_bundle=_annotation(layer, BUNDLE_ANNOTATION),
            rfc3161_timestamp=_annotation(layer, TIMESTAMP_ANNOTATION),
        ),
        payload,
    )


def verify_legacy(
    store: Store, source: LegacySource, subject: str, verifier: Verifier, *, max_layers: int
) -> Iterator[VerificationError | LegacyVerified | LegacyUntried]:
    """Try each signature (layer) of the manifest ``source`` names, in order, at most
    ``max_layers``: yield each failure, and the first success (then stop)."""
    if not isinstance(verifier, SimpleSigningVerifier):
        yield VerificationError(
            f"cosign signature {source.where}: the configured authority ({verifier.method}) cannot check "
            "cosign simple-signing signatures"
        )
        return
    try:
        manifest_digest, layers = _layers(store, source, subject)
    except (VerificationError, NotFoundError) as err:
        yield err if isinstance(err, VerificationError) else VerificationError(str(err))
        return
    payloads: dict[str, bytes] = {}
    for i, layer in enumerate(layers[:max_layers]):
        where = f"{source.where} ({manifest_digest}) layers[{i}]"
        try:
            sig, payload = _simple_signature(store, layer, where, payloads)
            reference = _payload_binding(payload, where, subject)
            signer = verifier.verify_simple_signing(sig)
        except VerificationError as err:
            yield err
            continue
        except NotFoundError as err:
            yield VerificationError(f"cosign signature {where}: its payload blob is missing: {err}")
            continue
        yield LegacyVerified(signer, manifest_digest, i, reference)
        return
    if len(layers) > max_layers:
        yield LegacyUntried(len(layers) - max_layers)
