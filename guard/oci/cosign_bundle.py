"""cosign v3 signatures: a Sigstore bundle v0.3 referrer whose DSSE statement has predicate type
``https://sigstore.dev/cosign/sign/v1`` (or a predicate a rule adds) and names the image.

cosign v3 (``--new-bundle-format``, the default since 3.0) attaches one OCI 1.1 referrer of
artifactType ``application/vnd.dev.sigstore.bundle.v0.3+json`` per signature. The bundle is
verified by the authority's verifier (keyless: sigstore-python's ``verify_dsse``, which checks the
chain, SCT, transparency log and signed timestamps when the trust root lists timestamp
authorities; key: guard's key verifier, cosign's ``publicKey.hint`` accepted). sigstore-python
does not look at the statement: here its predicate type must be a signature predicate and one of
its subjects must be the manifest digest itself.
"""

from __future__ import annotations

from collections.abc import Collection

from guard.errors import BundleFormatError, IntegrityError
from guard.signing import verify_statement
from guard.signing.types import SignerInfo, Verifier


def verify_cosign_bundle(
    bundle: bytes, verifier: Verifier, subject_digest: str, predicates: Collection[str], where: str
) -> tuple[SignerInfo, str]:
    """Verify a cosign bundle signature of ``subject_digest``: (who signed, predicate type)."""
    statement = verify_statement(bundle, verifier)
    if statement.predicate_type not in predicates:  # the verified value, not a peeked one
        raise BundleFormatError(
            f"referrer {where} is not a signature: predicate type {statement.predicate_type[:200]!r} "
            "(an attestation, which never counts as a signature)"
        )
    algorithm, hexdigest = subject_digest.split(":", 1)
    if not any(s.digest.get(algorithm) == hexdigest for s in statement.subjects):
        found = [dict(s.digest) for s in statement.subjects][:5]
        raise IntegrityError(
            f"the signature's subject is {found}, not the manifest {subject_digest}", changed=[subject_digest]
        )
    return statement.signer, statement.predicate_type
