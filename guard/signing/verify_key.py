"""Verifying backend: a bare ECDSA public key (OMS "key" method)."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.errors import BundleFormatError, SignatureMismatch
from guard.signing.bundle import envelope_of
from guard.signing.dsse import b64decode, pae, pae_legacy
from guard.signing.keys import (
    ecdsa_hash,
    load_public_key,
    load_public_key_pem,
    public_key_fingerprint,
    public_key_hint,
)
from guard.signing.types import SignerInfo, SigningMethod, SimpleSignature

log = logging.getLogger(__name__)


def verify_dsse_signature(
    key: ec.EllipticCurvePublicKey,
    sig: bytes,
    payload_type: str,
    payload: bytes,
    *,
    legacy_sha256: bool = False,
) -> None:
    """Check an ECDSA signature over the DSSE PAE; fall back to the v0.2 encoding as model-signing
    does. Raises SignatureMismatch."""
    try:
        key.verify(sig, pae(payload_type, payload), ec.ECDSA(ecdsa_hash(key)))
        return
    except InvalidSignature:
        pass
    legacy_hashes: list[hashes.HashAlgorithm] = [ecdsa_hash(key)]
    if legacy_sha256 and not isinstance(legacy_hashes[0], hashes.SHA256):
        legacy_hashes.append(hashes.SHA256())
    for algorithm in legacy_hashes:
        try:
            key.verify(sig, pae_legacy(payload_type, payload), ec.ECDSA(algorithm))
        except InvalidSignature:
            continue
        log.warning("the signature uses model-signing v0.2's DSSE encoding; re-sign to upgrade it")
        return
    raise SignatureMismatch(
        "the signature does not verify with the given key: the model was signed with another key, "
        "or the signed statement was modified"
    )


class KeyVerifier:
    """Verifies bundles signed by one ECDSA key."""

    method: SigningMethod = "key"

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self._key = public_key
        self.fingerprint = public_key_fingerprint(public_key)
        self._hint = public_key_hint(public_key)
        self._der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # cosign writes publicKey.hint as base64 of SHA-256 over the DER SubjectPublicKeyInfo
        self._cosign_hint = base64.b64encode(hashlib.sha256(self._der).digest()).decode()

    @classmethod
    def from_file(cls, path: Path) -> KeyVerifier:
        return cls(load_public_key(path))

    @classmethod
    def from_pem(cls, data: bytes) -> KeyVerifier:
        return cls(load_public_key_pem(data, "public key"))

    def verify_bundle(self, bundle: Mapping[str, Any]) -> tuple[bytes, SignerInfo]:
        material = bundle.get("verificationMaterial")
        if not isinstance(material, Mapping):
            raise BundleFormatError("verificationMaterial: missing", field="verificationMaterial")
        if "publicKey" not in material:
            found = next((k for k in ("x509CertificateChain", "certificate") if k in material), None)
            if found:
                raise BundleFormatError(
                    f"verificationMaterial: expected a publicKey (signed with a key), found {found}: this "
                    "signature was made with a certificate; verify it with "
                    + (
                        "--certificate-roots"
                        if found == "x509CertificateChain"
                        else "--identity and --issuer"
                    ),
                    field="verificationMaterial.publicKey",
                )
            raise BundleFormatError(
                "verificationMaterial.publicKey: missing", field="verificationMaterial.publicKey"
            )
        public_key = material["publicKey"]
        hint = public_key.get("hint") if isinstance(public_key, Mapping) else None
        if hint and hint not in (self._hint, self._cosign_hint):
            raise SignatureMismatch(
                f"key mismatch: the model was signed with another key (the signature names key hint "
                f"{hint}; the given key {self.fingerprint} has hint {self._hint})"
            )
        raw = public_key.get("rawBytes") if isinstance(public_key, Mapping) else None
        if not hint and raw:
            # Older bundles carried the key itself (DER SubjectPublicKeyInfo) instead of a hint.
            der = b64decode(raw, "verificationMaterial.publicKey.rawBytes")
            if der != self._der:
                raise SignatureMismatch(
                    "key mismatch: the model was signed with another key (the signature carries key "
                    f"sha256:{hashlib.sha256(der).hexdigest()}; the given key is {self.fingerprint})"
                )
        elif not hint:
            log.warning("the signature does not name its key (old verificationMaterial format); re-sign it")
        envelope = envelope_of(bundle)
        verify_dsse_signature(self._key, envelope.signatures[0].sig, envelope.payload_type, envelope.payload)
        return envelope.payload, SignerInfo(
            method="key", identity=self.fingerprint, key_fingerprint=self.fingerprint
        )

    def verify_simple_signing(self, signature: SimpleSignature) -> SignerInfo:
        """A cosign simple-signing signature (ECDSA over the payload bytes) by this key."""
        from guard.signing.cosign_key import verify_simple_key  # noqa: PLC0415

        return verify_simple_key(self._key, self.fingerprint, signature)
