"""Signing backend: an ECDSA key with its X.509 certificate chain (OMS "certificate" method).

The bundle carries the leaf and the chain in ``verificationMaterial.x509CertificateChain``
(DER, leaf first), as model-signing writes it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from guard.errors import KeyMaterialError
from guard.signing.certificates import describe_certificate, load_pem_certificates, signing_usage_problem
from guard.signing.dsse import b64encode
from guard.signing.keys import load_private_key, public_key_fingerprint
from guard.signing.sign_key import dsse_bundle, ecdsa_sign_dsse
from guard.signing.types import SigningMethod


class CertificateSigner:
    """Signs with a private key whose certificate chains to a CA the verifier trusts."""

    method: SigningMethod = "certificate"

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
    ) -> None:
        if certificate.public_key() != private_key.public_key():
            raise KeyMaterialError(
                f"the certificate's public key ({public_key_fingerprint(_ec(certificate))}) is not the "
                f"private key's ({public_key_fingerprint(private_key)}): give the key the certificate was "
                "issued for"
            )
        problem = signing_usage_problem(certificate)
        if problem:
            raise KeyMaterialError(f"certificate {describe_certificate(certificate)} cannot sign: {problem}")
        now = datetime.datetime.now(datetime.UTC)
        if certificate.not_valid_after_utc < now:
            raise KeyMaterialError(
                f"certificate {describe_certificate(certificate)} expired on "
                f"{certificate.not_valid_after_utc.isoformat()}"
            )
        if certificate.not_valid_before_utc > now:
            raise KeyMaterialError(
                f"certificate {describe_certificate(certificate)} is not valid before "
                f"{certificate.not_valid_before_utc.isoformat()}"
            )
        self._key = private_key
        self._chain = [certificate, *chain]

    @classmethod
    def from_files(
        cls,
        key_path: Path,
        certificate_path: Path,
        chain_path: Path | Sequence[Path],
        passphrase: bytes | None = None,
    ) -> CertificateSigner:
        key = load_private_key(key_path, passphrase)
        leaf = load_pem_certificates([certificate_path], "certificate")
        if len(leaf) != 1:
            raise KeyMaterialError(
                f"certificate {certificate_path}: expected exactly one (leaf) certificate, found {len(leaf)}"
            )
        paths = [chain_path] if isinstance(chain_path, Path) else list(chain_path)
        chain = load_pem_certificates(paths, "certificate chain")
        return cls(key, leaf[0], chain)

    def sign_payload(self, payload: bytes) -> dict[str, Any]:
        material = {
            "x509CertificateChain": {
                "certificates": [
                    {"rawBytes": b64encode(c.public_bytes(serialization.Encoding.DER))} for c in self._chain
                ]
            },
            "tlogEntries": [],
        }
        return dsse_bundle(payload, ecdsa_sign_dsse(self._key, payload), material)


def _ec(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyMaterialError("the certificate does not hold an ECDSA public key")
    return key
