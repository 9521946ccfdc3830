"""Write a cosign v3 image signature: a Sigstore bundle v0.3 attached as an OCI 1.1 referrer.

What ``cosign sign`` (v3, ``--new-bundle-format``, its default) pushes, and what
``guard.oci.cosign_bundle`` and ``cosign verify`` read:

1. The in-toto Statement v1 ``{"_type", "subject": [{"digest": {"sha256": <hex>},
   "annotations": {...}}], "predicateType": "https://sigstore.dev/cosign/sign/v1"}`` whose one
   subject is the manifest (or index) digest itself, no name, no predicate.
2. Signed as a DSSE envelope (payloadType ``application/vnd.in-toto+json``) in a bundle v0.3, by
   any of guard's signers (key, certificate, keyless). A key bundle names its key with cosign's
   ``publicKey.hint`` (base64 SHA-256 of the DER SubjectPublicKeyInfo).
3. Pushed as an image manifest of artifactType ``application/vnd.dev.sigstore.bundle.v0.3+json``:
   the empty config, one layer (the bundle, same media type), ``subject`` the signed manifest,
   annotations ``dev.sigstore.bundle.content: dsse-envelope``,
   ``dev.sigstore.bundle.predicateType`` and ``org.opencontainers.image.created``.
4. Registries without the Referrers API (distribution 2.8) get the fallback tag ``sha256-<hex>``
   index updated (``guard.oci.referrers.attach``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from guard.oci.referrers import PREDICATE_ANNOTATION, Attachment, attach
from guard.oci.types import SIGSTORE_BUNDLE, Descriptor, Store
from guard.signing.bundle import serialize_bundle, sign_statement
from guard.signing.types import IN_TOTO_STATEMENT_TYPE, Signer

COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
CONTENT_ANNOTATION = "dev.sigstore.bundle.content"


@dataclass(frozen=True)
class SignedImage:
    """The signature written: the bundle's bytes and the referrer that carries it."""

    subject: Descriptor
    bundle: bytes
    referrer: Descriptor


def cosign_statement(
    digest: str, annotations: Mapping[str, str] | None = None, name: str | None = None
) -> dict[str, object]:
    """Step 1: cosign's signature statement about ``digest`` (``sha256:<hex>``). ``name`` (the
    repository) only for the keyless signer: sigstore-python's signer requires a subject name;
    cosign writes none, and verifiers (cosign's, guard's) match the digest alone."""
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64:
        raise ValueError(f"expected a sha256:<64 hex> manifest digest, found {digest!r}")
    subject: dict[str, object] = {"digest": {"sha256": hexdigest}, "annotations": dict(annotations or {})}
    if name is not None:
        subject = {"name": name, **subject}
    return {"_type": IN_TOTO_STATEMENT_TYPE, "subject": [subject], "predicateType": COSIGN_SIGN_PREDICATE}


def cosign_key_hint(public_key_pem: bytes) -> str:
    """cosign's ``publicKey.hint``: base64 of SHA-256 over the DER SubjectPublicKeyInfo."""
    key = serialization.load_pem_public_key(public_key_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _with_cosign_hint(bundle: bytes, signer: Signer) -> bytes:
    """Step 2: a key bundle names its key as cosign does (the hint is not signed)."""
    public_key = getattr(signer, "public_key_pem", None)
    if signer.method != "key" or not callable(public_key):
        return bundle
    doc = json.loads(bundle)
    doc["verificationMaterial"]["publicKey"] = {"hint": cosign_key_hint(public_key())}
    return serialize_bundle(doc)


def sign_image(
    store: Store,
    subject: Descriptor,
    signer: Signer,
    *,
    repository: str,
    annotations: Mapping[str, str] | None = None,
) -> SignedImage:
    """Sign the manifest ``subject`` of ``repository`` in ``store`` as cosign v3 does and
    attach the signature."""
    name = repository if signer.method == "keyless" else None
    statement = cosign_statement(subject.digest, annotations, name)
    bundle = _with_cosign_hint(sign_statement(statement, signer), signer)
    attachment = Attachment(
        kind="signature",
        data=bundle,
        artifact_type=SIGSTORE_BUNDLE,
        layer_media_type=SIGSTORE_BUNDLE,
        filename="",
        annotations={CONTENT_ANNOTATION: "dsse-envelope", PREDICATE_ANNOTATION: COSIGN_SIGN_PREDICATE},
    )
    referrer = attach(store, subject, attachment)
    return SignedImage(subject, bundle, referrer)
