"""Verify one attestation: signed by an allowed authority, bound to this exact model, predicate valid.

``verify_attestation`` raises (VerificationError family, naming the reason); ``assess_attestation``
turns the same checks into an outcome (present / invalid with the reason) for ``guard facts``:
nothing that failed a check is ever counted as present or contributes a fact.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guard.attest.extract import Extracted, extract
from guard.attest.facts import AttestationStatus
from guard.attest.specs import PREDICATES, FactsName, spec_for
from guard.attest.subject import ModelSubject
from guard.errors import AttestationError, BundleFormatError, VerificationError
from guard.signing import SignerInfo, Subject, Verifier, verify_statement
from guard.signing.bundle import envelope_of, parse_bundle, parse_statement

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedAttestation:
    name: FactsName
    predicate_type: str
    predicate: Mapping[str, Any]
    signer: SignerInfo
    extracted: Extracted


@dataclass(frozen=True)
class AttestationOutcome:
    """One attestation as ``guard facts`` reports it."""

    name: str
    predicate_type: str
    status: AttestationStatus
    reason: str | None
    source: str
    attestation: VerifiedAttestation | None = None


def check_subject(subjects: Sequence[Subject], subject: ModelSubject) -> None:
    """The statement must name this model's digest (sha256) among its subjects."""
    found = [
        f"sha256:{s.digest.get('sha256')}" if s.digest.get("sha256") else f"{dict(s.digest)}"
        for s in subjects
    ]
    if not any(s.digest.get("sha256") == subject.sha256 for s in subjects):
        raise AttestationError(
            f"statement subject is another model: expected sha256:{subject.sha256} ({subject.name}), "
            f"found {', '.join(found) or 'no subject'}"
        )


def verify_attestation(
    bundle: bytes | Mapping[str, Any], verifier: Verifier, subject: ModelSubject
) -> VerifiedAttestation:
    """1. signature and signer (the verifier's trust), 2. subject bound to this model,
    3. predicate type known, 4. predicate valid against its spec, then its facts."""
    # 1. Signature: the template checks bundle shape, DSSE, cryptography, identity, statement.
    verified = verify_statement(bundle, verifier)
    # 2. Subject.
    check_subject(verified.subjects, subject)
    # 3. A predicate type guard reads.
    spec = spec_for(verified.predicate_type)
    if spec is None:
        known = ", ".join(t for s in PREDICATES for t in s.predicate_types)
        raise AttestationError(
            f"predicateType {verified.predicate_type!r} is not one guard reads (known: {known})"
        )
    # 4. Schema, then extraction.
    extracted = extract(spec.name, verified.predicate)
    return VerifiedAttestation(
        spec.name, verified.predicate_type, verified.predicate, verified.signer, extracted
    )


def claimed_predicate_type(bundle: bytes) -> str:
    """The predicate type a bundle claims, unverified, for reporting an invalid attestation."""
    try:
        statement = parse_statement(envelope_of(parse_bundle(bundle)).payload)
    except VerificationError:
        return "unknown"
    value = statement.get("predicateType")
    return value if isinstance(value, str) and value else "unknown"


def assess_attestation(
    bundle: bytes, verifier: Verifier, subject: ModelSubject, *, source: str
) -> AttestationOutcome:
    claimed = claimed_predicate_type(bundle)
    spec = spec_for(claimed)
    name = spec.name if spec else claimed
    try:
        att = verify_attestation(bundle, verifier, subject)
    except BundleFormatError as err:
        reason = f"not a valid signed attestation: {err}"
    except VerificationError as err:
        reason = str(err)
    else:
        return AttestationOutcome(att.name, att.predicate_type, "present", None, source, att)
    log.warning("attestation %s (%s) is invalid: %s", source, claimed, reason)
    return AttestationOutcome(name, claimed, "invalid", reason, source)
