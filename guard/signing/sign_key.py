"""Signing backend: a bare ECDSA private key (OMS "key" method)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.signing.dsse import b64encode, pae
from guard.signing.keys import ecdsa_hash, load_private_key, public_key_fingerprint, public_key_hint
from guard.signing.types import BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, SigningMethod

if TYPE_CHECKING:
    from guard.signing.verify_key import KeyVerifier


def dsse_bundle(payload: bytes, signature: bytes, verification_material: dict[str, Any]) -> dict[str, Any]:
    """A Sigstore bundle v0.3 JSON object around one DSSE signature."""
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": verification_material,
        "dsseEnvelope": {
            "payload": b64encode(payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": b64encode(signature), "keyid": ""}],
        },
    }


def ecdsa_sign_dsse(key: ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    """ECDSA (curve-matched hash) over the DSSE PAE of an in-toto payload."""
    return key.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload), ec.ECDSA(ecdsa_hash(key.public_key())))


class KeySigner:
    """Signs with a local ECDSA key; the bundle names the key by ``publicKey.hint``."""

    method: SigningMethod = "key"

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._key = private_key
        self.fingerprint = public_key_fingerprint(private_key)

    @classmethod
    def from_file(cls, path: Path, passphrase: bytes | None = None) -> KeySigner:
        return cls(load_private_key(path, passphrase))

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def own_verifier(self) -> KeyVerifier:
        """A verifier of this signer's own signatures (its public key)."""
        from guard.signing.verify_key import KeyVerifier  # noqa: PLC0415

        return KeyVerifier(self._key.public_key())

    def sign_payload(self, payload: bytes) -> dict[str, Any]:
        material = {"publicKey": {"hint": public_key_hint(self._key.public_key())}, "tlogEntries": []}
        return dsse_bundle(payload, ecdsa_sign_dsse(self._key, payload), material)
