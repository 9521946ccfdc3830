"""Verifying backend: a cosign simple-signing signature made with a bare key (``cosign sign --key``).

cosign signs the payload bytes themselves (no DSSE, no PAE): ECDSA, ASN.1 DER, SHA-256 for a
P-256 key (cosign hashes with SHA-256 whatever the curve; the curve's own hash is tried too, as
other signers pair them). A ``dev.sigstore.cosign/bundle`` Rekor entry beside a key signature is
not needed for it to be valid (cosign's ``--insecure-ignore-tlog`` is the norm for key-signed
images in air-gapped registries) and is not consulted: the key is the whole trust.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from guard.errors import SignatureMismatch
from guard.signing.keys import ecdsa_hash
from guard.signing.types import SignerInfo, SimpleSignature


def verify_payload_signature(key: ec.EllipticCurvePublicKey, signature: bytes, payload: bytes) -> bool:
    """Whether ``signature`` is ``key``'s ECDSA signature over ``payload`` (SHA-256, or the
    hash paired with the curve)."""
    algorithms: list[hashes.HashAlgorithm] = [hashes.SHA256()]
    if not isinstance(ecdsa_hash(key), hashes.SHA256):
        algorithms.append(ecdsa_hash(key))
    for algorithm in algorithms:
        try:
            key.verify(signature, payload, ec.ECDSA(algorithm))
        except InvalidSignature:
            continue
        return True
    return False


def verify_simple_key(key: ec.EllipticCurvePublicKey, fingerprint: str, sig: SimpleSignature) -> SignerInfo:
    """Check ``sig`` against ``key``; SignatureMismatch says which signature did not verify."""
    if not verify_payload_signature(key, sig.signature, sig.payload):
        raise SignatureMismatch(
            f"cosign signature {sig.where} does not verify with key {fingerprint}: it was made with "
            "another key, or the payload was modified"
        )
    return SignerInfo(method="key", identity=fingerprint, key_fingerprint=fingerprint)
