"""guard.attest: ML-BOMs, attestations (sign, verify) and the model facts policies read.

Public API (imported lazily, so ``import guard.attest`` does no work):

* ``collect_facts(subject, verifier, attestations, *, signature=None, rejected=()) -> ModelFacts``
* ``directory_facts(model_dir, verifier, attestations=(), *, signature=None) -> ModelFacts``
* ``oci_facts(reference, verifier, store=None, *, access=None, attestations=()) -> ModelFacts``
* ``verify_attestation(bundle, verifier, subject) -> VerifiedAttestation`` (raises)
* ``sign_attestation(subject, predicate_type, predicate, signer) -> bytes``
* ``directory_subject(model_dir, *, cache=None, verifying=False) -> ModelSubject``
* ``build_sbom(model_dir, metadata=None) -> dict`` (CycloneDX 1.6 ML-BOM)
* ``ModelFacts`` and its parts in ``guard.attest.facts``; ``AttestationInput``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "collect_facts": "guard.attest.collect",
    "directory_facts": "guard.attest.collect",
    "AttestationInput": "guard.attest.collect",
    "oci_facts": "guard.attest.oci",
    "verify_attestation": "guard.attest.verify",
    "sign_attestation": "guard.attest.sign",
    "directory_subject": "guard.attest.subject",
    "ModelSubject": "guard.attest.subject",
    "build_sbom": "guard.attest.sbom",
    "ModelFacts": "guard.attest.facts",
}

__all__ = [
    "AttestationInput",
    "ModelFacts",
    "ModelSubject",
    "build_sbom",
    "collect_facts",
    "directory_facts",
    "directory_subject",
    "oci_facts",
    "sign_attestation",
    "verify_attestation",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'guard.attest' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
