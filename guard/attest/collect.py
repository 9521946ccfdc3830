"""``collect_facts``: the model facts from a verified signature and verified attestations.

The typed API the CLI, the admission webhook and the policy engine call. It never raises for a bad
attestation: each one becomes an outcome (present / invalid with the reason) and only present ones
contribute facts. It raises only for bad arguments (UsageError) or infrastructure failures.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.attest.facts import (
    AttestationFacts,
    AttestationStatus,
    DatasetFacts,
    EnergyFacts,
    FactsSigner,
    FactsSubject,
    ModelFacts,
    ModelInfo,
    ProvenanceFacts,
)
from guard.attest.specs import EXPECTED_KINDS, spec_named
from guard.attest.subject import ModelSubject
from guard.attest.verify import AttestationOutcome, assess_attestation
from guard.errors import IntegrityError, VerificationError
from guard.signing import OMS_PREDICATE_TYPE, SignerInfo, Verifier

SOURCE_PRIORITY = {"datasets": 0, "sbom": 1, "spdx": 2}  # who wins for model fields and datasets


@dataclass(frozen=True)
class AttestationInput:
    """An attestation bundle (Sigstore bundle JSON bytes) and where it came from."""

    bundle: bytes
    source: str


@dataclass(frozen=True)
class SignatureOutcome:
    """The model signature's verification: the signer, or why there is none."""

    signer: SignerInfo | None
    status: AttestationStatus
    reason: str | None = None
    source: str | None = None
    covers_manifest: bool = False  # OCI: the signature names the manifest digest (not only the files)


def facts_signer(info: SignerInfo) -> FactsSigner:
    return FactsSigner(method=info.method, identity=info.identity, issuer=info.issuer)


def verify_directory_signature(
    model_dir: Path, verifier: Verifier, signature: Path | None = None
) -> SignatureOutcome:
    """Verify ``model.sig`` (or ``signature``) against the directory; an outcome, never a raise
    for a failed verification."""
    from guard.signing import DEFAULT_SIGNATURE_NAME, verify_model  # noqa: PLC0415

    path = signature or model_dir / DEFAULT_SIGNATURE_NAME
    if not path.is_file():
        return SignatureOutcome(None, "missing", f"no model signature at {path}", str(path))
    try:
        verified = verify_model(model_dir, path, verifier)
    except VerificationError as err:
        return SignatureOutcome(None, "invalid", str(err), str(path))
    return SignatureOutcome(verified.signer, "present", None, str(path))


def _merge_datasets(ranked: Iterable[tuple[int, DatasetFacts]]) -> tuple[DatasetFacts, ...]:
    """One entry per dataset, the highest-priority source winning. Two entries are the same
    dataset when names match and their URIs match or one of them has none."""
    out: list[DatasetFacts] = []
    for _, dataset in sorted(ranked, key=lambda item: item[0]):
        same = any(
            d.name == dataset.name and (d.uri == dataset.uri or d.uri is None or dataset.uri is None)
            for d in out
        )
        if not same:
            out.append(dataset)
    return tuple(out)


def build_facts(
    subject: ModelSubject,
    signature: SignatureOutcome | None,
    outcomes: Sequence[AttestationOutcome],
    *,
    expected: Sequence[str] = EXPECTED_KINDS,
) -> ModelFacts:
    """Assemble the facts document from verified outcomes (pure; no I/O)."""
    present = sorted(
        (o for o in outcomes if o.attestation is not None), key=lambda o: SOURCE_PRIORITY.get(o.name, 9)
    )
    licenses: list[str] = []
    model: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    energy: dict[str, Any] = {}
    datasets: list[tuple[int, DatasetFacts]] = []
    for outcome in present:
        assert outcome.attestation is not None
        ex = outcome.attestation.extracted
        licenses += [lic for lic in ex.licenses if lic not in licenses]
        for target, values in ((model, ex.model), (provenance, ex.provenance), (energy, ex.energy)):
            for key, value in values.items():
                target.setdefault(key, value)
        datasets += [(SOURCE_PRIORITY.get(outcome.name, 9), d) for d in ex.datasets]
    entries = []
    if signature is not None:
        entries.append(
            AttestationFacts(
                predicate_type=OMS_PREDICATE_TYPE,
                name="signature",
                status=signature.status,
                reason=signature.reason,
                source=signature.source,
                signer=facts_signer(signature.signer) if signature.signer else None,
            )
        )
    for outcome in outcomes:
        entries.append(
            AttestationFacts(
                predicate_type=outcome.predicate_type,
                name=outcome.name,
                status=outcome.status,
                reason=outcome.reason,
                source=outcome.source,
                signer=facts_signer(outcome.attestation.signer) if outcome.attestation else None,
            )
        )
    for kind in expected:
        if not any(o.name == kind for o in present):
            spec = spec_named(kind)
            tried = [o for o in outcomes if o.name == kind]
            why = (
                f"no valid {kind} attestation ({len(tried)} invalid)"
                if tried
                else f"no {kind} attestation was supplied"
            )
            entries.append(
                AttestationFacts(
                    predicate_type=spec.predicate_types[0], name=kind, status="missing", reason=why
                )
            )
    return ModelFacts(
        subject=FactsSubject(name=subject.name, digest={"sha256": subject.sha256}, kind=subject.kind),
        signers=(facts_signer(signature.signer),) if signature and signature.signer else (),
        licenses=tuple(licenses),
        model=ModelInfo(**model),
        datasets=_merge_datasets(datasets),
        provenance=ProvenanceFacts(**provenance),
        energy=EnergyFacts(**energy),
        attestations=tuple(entries),
    )


def collect_facts(
    subject: ModelSubject,
    verifier: Verifier,
    attestations: Sequence[AttestationInput] = (),
    *,
    signature: SignatureOutcome | None = None,
    rejected: Sequence[AttestationOutcome] = (),
    expected: Sequence[str] = EXPECTED_KINDS,
) -> ModelFacts:
    """Verify every attestation against ``subject`` with ``verifier`` and build the facts.

    ``signature``: the model signature's outcome (``verify_directory_signature`` for a directory;
    the OCI path verifies the signature referrer). Every attestation is assessed on its own; a
    failed one is reported as invalid with its reason and contributes nothing. ``rejected``:
    candidates already found unusable before verification (e.g. an OCI referrer without a bundle).
    """
    outcomes = [assess_attestation(a.bundle, verifier, subject, source=a.source) for a in attestations]
    outcomes += rejected
    return build_facts(subject, signature, outcomes, expected=expected)


def directory_facts(
    model_dir: Path,
    verifier: Verifier,
    attestations: Sequence[AttestationInput] = (),
    *,
    signature: Path | None = None,
) -> ModelFacts:
    """The facts of a model directory: hash it (OMS subject), verify its ``model.sig`` (or
    ``signature``) and the given attestations. A verification: the bytes are hashed, never taken
    from the digest cache (whose entries a filesystem reporting unchanged times would keep)."""
    from guard.attest.subject import directory_subject  # noqa: PLC0415
    from guard.signing import DEFAULT_SIGNATURE_NAME  # noqa: PLC0415
    from guard.signing.model import relative_inside  # noqa: PLC0415

    own = model_dir / DEFAULT_SIGNATURE_NAME
    if signature is None and own.is_file():
        subject, outcome = _signed_directory(model_dir, own, verifier, own=True)
    elif (
        signature is not None and not os.path.lexists(own) and relative_inside(signature, model_dir) is None
    ):  # outside: verify_model leaves no file out either
        subject, outcome = _signed_directory(model_dir, signature, verifier, own=False)
    else:
        subject = directory_subject(model_dir, verifying=True)
        outcome = verify_directory_signature(model_dir, verifier, signature)
    return collect_facts(subject, verifier, attestations, signature=outcome)


def _signed_directory(
    model_dir: Path, path: Path, verifier: Verifier, *, own: bool
) -> tuple[ModelSubject, SignatureOutcome]:
    """The subject and the signature's outcome from one read of the signature ``path`` and, where
    the two would hash the same files the same way, one hashing of the directory.

    ``own``: ``path`` is the directory's ``model.sig``; ``directory_subject`` hashes with the
    serialization it states, ``model.sig`` left out, as its check does: always the same manifest.
    Otherwise ``path`` lies outside a directory holding no ``model.sig``: the subject is hashed with
    the default serialization, the check with the signature's, nothing left out by either; the
    same manifest when the signature's serialization is the default (what ``guard sign
    --signature`` outside the directory writes), else both are hashed. A signature that does not
    verify leaves the subject to ``directory_subject``, as before."""
    from guard.attest.subject import directory_subject, subject_of, warn_not_covered  # noqa: PLC0415
    from guard.signing import DEFAULT_SIGNATURE_NAME, Serialization, compare_manifests  # noqa: PLC0415
    from guard.signing.model import check_model_dir, hash_as_signed, verify_model_bundle  # noqa: PLC0415

    check_model_dir(model_dir)
    try:
        data = path.read_bytes()
    except OSError:
        return directory_subject(model_dir, verifying=True), verify_directory_signature(
            model_dir, verifier, path
        )
    try:
        verified = verify_model_bundle(data, verifier)
        left_out = (DEFAULT_SIGNATURE_NAME,) if own else ()
        actual = hash_as_signed(model_dir, verified, left_out)  # refuses a signature of no file
    except VerificationError as err:
        return directory_subject(model_dir, verifying=True), SignatureOutcome(
            None, "invalid", str(err), str(path)
        )
    same = own or verified.manifest.serialization == Serialization()
    subject = subject_of(model_dir, actual) if same else directory_subject(model_dir, verifying=True)
    try:
        compare_manifests(verified.manifest, actual)
    except VerificationError as err:
        if own and isinstance(err, IntegrityError):  # as directory_subject says it
            warn_not_covered(path, model_dir, err)
        return subject, SignatureOutcome(None, "invalid", str(err), str(path))
    return subject, SignatureOutcome(verified.signer, "present", None, str(path))
