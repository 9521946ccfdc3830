"""guard.signing: sign and verify ML models in the OpenSSF Model Signing (OMS) v1.0 format.

The public API (see README, section signing). Backends: ``KeySigner`` / ``KeyVerifier`` (a bare
ECDSA key), ``CertificateSigner`` / ``CertificateVerifier`` (an X.509 chain to given roots), and
``SigstoreSigner`` / ``SigstoreVerifier`` (keyless; imported lazily from
``guard.signing.sign_sigstore`` / ``guard.signing.verify_sigstore``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guard.signing.bundle import sign_statement, verify_statement
    from guard.signing.cache import DigestCache
    from guard.signing.hashing import file_digest, hash_model
    from guard.signing.manifest import compare_manifests, subject_digest
    from guard.signing.model import SignedModel, VerifiedModel, sign_model, verify_model, verify_model_bundle
    from guard.signing.oms import manifest_from_statement, statement_for_manifest
    from guard.signing.sign_certificate import CertificateSigner
    from guard.signing.sign_key import KeySigner
    from guard.signing.sign_sigstore import SigstoreSigner
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
    from guard.signing.verify_certificate import CertificateVerifier
    from guard.signing.verify_key import KeyVerifier
    from guard.signing.verify_sigstore import SigstoreVerifier

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

# Every name loads on first use: importing guard.signing.types (as the CLI does) stays cheap.
_LAZY = {
    "BUNDLE_MEDIA_TYPE": "guard.signing.types",
    "CertificateSigner": "guard.signing.sign_certificate",
    "CertificateVerifier": "guard.signing.verify_certificate",
    "DEFAULT_IGNORE_PATHS": "guard.signing.types",
    "DEFAULT_SHARD_SIZE": "guard.signing.types",
    "DEFAULT_SIGNATURE_NAME": "guard.signing.types",
    "DigestCache": "guard.signing.cache",
    "IN_TOTO_PAYLOAD_TYPE": "guard.signing.types",
    "IN_TOTO_STATEMENT_TYPE": "guard.signing.types",
    "KeySigner": "guard.signing.sign_key",
    "KeyVerifier": "guard.signing.verify_key",
    "LEGACY_PREDICATE_TYPE": "guard.signing.types",
    "Manifest": "guard.signing.types",
    "OMS_PREDICATE_TYPE": "guard.signing.types",
    "Resource": "guard.signing.types",
    "Serialization": "guard.signing.types",
    "SignedModel": "guard.signing.model",
    "Signer": "guard.signing.types",
    "SignerInfo": "guard.signing.types",
    "SigstoreSigner": "guard.signing.sign_sigstore",
    "SigstoreVerifier": "guard.signing.verify_sigstore",
    "Subject": "guard.signing.types",
    "VerifiedModel": "guard.signing.model",
    "VerifiedStatement": "guard.signing.types",
    "Verifier": "guard.signing.types",
    "compare_manifests": "guard.signing.manifest",
    "file_digest": "guard.signing.hashing",
    "hash_model": "guard.signing.hashing",
    "manifest_from_statement": "guard.signing.oms",
    "sign_model": "guard.signing.model",
    "sign_statement": "guard.signing.bundle",
    "statement_for_manifest": "guard.signing.oms",
    "subject_digest": "guard.signing.manifest",
    "verify_model": "guard.signing.model",
    "verify_model_bundle": "guard.signing.model",
    "verify_statement": "guard.signing.bundle",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guard.signing' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
