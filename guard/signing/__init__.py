"""guard.signing: sign and verify ML models in the OpenSSF Model Signing (OMS) v1.0 format.

The public API (see README, section signing). Backends: ``KeySigner`` / ``KeyVerifier`` (a bare
ECDSA key), ``CertificateSigner`` / ``CertificateVerifier`` (an X.509 chain to given roots), and
``SigstoreSigner`` / ``SigstoreVerifier`` (keyless; imported lazily from
``guard.signing.sign_sigstore`` / ``guard.signing.verify_sigstore``).
"""

from __future__ import annotations

from typing import Any

from guard.signing.bundle import sign_statement, verify_statement
from guard.signing.cache import DigestCache
from guard.signing.hashing import file_digest, hash_model
from guard.signing.manifest import compare_manifests, subject_digest
from guard.signing.model import SignedModel, VerifiedModel, sign_model, verify_model, verify_model_bundle
from guard.signing.oms import manifest_from_statement, statement_for_manifest
from guard.signing.sign_key import KeySigner
from guard.signing.types import (
    BUNDLE_MEDIA_TYPE,
    DEFAULT_IGNORE_PATHS,
    DEFAULT_SHARD_SIZE,
    DEFAULT_SIGNATURE_NAME,
    IN_TOTO_PAYLOAD_TYPE,
    IN_TOTO_STATEMENT_TYPE,
    LEGACY_PREDICATE_TYPE,
    OMS_PREDICATE_TYPE,
    Manifest,
    Resource,
    Serialization,
    Signer,
    SignerInfo,
    Subject,
    VerifiedStatement,
    Verifier,
)
from guard.signing.verify_key import KeyVerifier

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "DEFAULT_IGNORE_PATHS",
    "DEFAULT_SHARD_SIZE",
    "DEFAULT_SIGNATURE_NAME",
    "IN_TOTO_PAYLOAD_TYPE",
    "IN_TOTO_STATEMENT_TYPE",
    "LEGACY_PREDICATE_TYPE",
    "OMS_PREDICATE_TYPE",
    "CertificateSigner",
    "CertificateVerifier",
    "DigestCache",
    "KeySigner",
    "KeyVerifier",
    "Manifest",
    "Resource",
    "Serialization",
    "SignedModel",
    "Signer",
    "SignerInfo",
    "SigstoreSigner",
    "SigstoreVerifier",
    "Subject",
    "VerifiedModel",
    "VerifiedStatement",
    "Verifier",
    "compare_manifests",
    "file_digest",
    "hash_model",
    "manifest_from_statement",
    "sign_model",
    "sign_statement",
    "statement_for_manifest",
    "subject_digest",
    "verify_model",
    "verify_model_bundle",
    "verify_statement",
]

_LAZY = {
    "CertificateSigner": "guard.signing.sign_certificate",
    "CertificateVerifier": "guard.signing.verify_certificate",
    "SigstoreSigner": "guard.signing.sign_sigstore",
    "SigstoreVerifier": "guard.signing.verify_sigstore",
}


def __getattr__(name: str) -> Any:
    """Backends with heavy imports (pyOpenSSL, sigstore) load on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guard.signing' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    return getattr(importlib.import_module(module), name)
