"""The verdicts on one reference that are not a verification, with the messages users read.

Each message names where the reference is (container and field), what happened, and what to do;
``reason`` is the bare cause handed to policies (``verification.reason``).
"""

from __future__ import annotations

import dataclasses

from guard.admission.outcome import ArtifactVerdict
from guard.admission.ports import RuleMatch
from guard.admission.references import ArtifactReference
from guard.errors import NotFoundError, RegistryAuthError, VerificationError


def unmatched(ref: ArtifactReference, match: RuleMatch) -> ArtifactVerdict:
    """No trust rule covers the reference: the config's default for unmatched artifacts."""
    text = f"{ref.where()}: no trust rule covers {ref.reference}"
    if match.unmatched == "allow":
        return ArtifactVerdict(ref=ref, match=match, status="unmatched", effect="pass")
    reason = "no trust rule covers it"
    if match.unmatched == "warn":
        return ArtifactVerdict(
            ref=ref,
            match=match,
            status="unmatched",
            effect="warn",
            message=f"{text}; it was not verified",
            reason=reason,
        )
    advice = (
        "use an artifact from a trusted location or ask for a rule in guard's config"
        if ref.is_oci
        else f"guard verifies only OCI artifacts: publish the model to an OCI registry and "
        f"reference it as oci://, or ask for its {ref.scheme}:// source to be allowed in "
        f"policy.allowedModelSources"
    )
    return ArtifactVerdict(
        ref=ref,
        match=match,
        status="unmatched",
        effect="deny",
        message=f"{text}, and artifacts no rule covers are denied; {advice}",
        reason=reason,
    )


def not_oci(ref: ArtifactReference, match: RuleMatch) -> ArtifactVerdict:
    """A rule requires a signature on a reference guard cannot verify (``s3://``, ``hf://``)."""
    return ArtifactVerdict(
        ref=ref,
        match=match,
        status="failed",
        effect="deny",
        message=f"{ref.where()}: rule {match.rule!r} requires a verified signature, and guard "
        f"can verify only OCI artifacts, not {ref.scheme}:// ({ref.reference}); publish the "
        f"model to an OCI registry and reference it as oci://",
        reason=f"{ref.scheme}:// artifacts cannot be verified",
    )


def not_found(ref: ArtifactReference, match: RuleMatch, err: NotFoundError) -> ArtifactVerdict:
    """The registry answered: no such repository, tag or manifest. Denied even where the rule
    fails open (the registry is up; the artifact is not there)."""
    return ArtifactVerdict(
        ref=ref,
        match=match,
        status="failed",
        effect="deny",
        message=f"{ref.where()}: {ref.reference} does not exist in its registry ({err}); check "
        f"the name and tag",
        reason=f"not found: {err}",
    )


def failed(ref: ArtifactReference, match: RuleMatch, err: VerificationError) -> ArtifactVerdict:
    """Verification said no: unsigned, tampered, another signer, a missing attestation."""
    return ArtifactVerdict(
        ref=ref,
        match=match,
        status="failed",
        effect="deny",
        message=f"{ref.where()}: {ref.reference} failed verification under rule {match.rule!r}: {err}",
        reason=str(err),
    )


def unverifiable(
    ref: ArtifactReference,
    match: RuleMatch,
    reason: str,
    advice: str = "retry once the registry answers",
) -> ArtifactVerdict:
    """Could not find out (registry down or slow, the deadline, a bug): deny (fail closed), or
    warn where the rule fails open."""
    text = f"{ref.where()}: could not verify {ref.reference}: {reason}"
    if match.fail_open:
        return ArtifactVerdict(
            ref=ref,
            match=match,
            status="error",
            effect="warn",
            message=f"allowed UNVERIFIED because rule {match.rule!r} fails open: {text}",
            reason=f"could not verify (rule fails open): {reason}",
        )
    return ArtifactVerdict(
        ref=ref,
        match=match,
        status="error",
        effect="deny",
        message=f"{text}; denied because guard fails closed, {advice}",
        reason=f"could not verify: {reason}",
    )


def fail_open_overruled(verdict: ArtifactVerdict) -> ArtifactVerdict:
    """A fail-open verdict in a request denied for another reason: its message no longer says
    "allowed", since nothing was."""
    if verdict.effect != "warn" or verdict.status != "error" or not verdict.match.fail_open:
        return verdict
    text = f"{verdict.ref.where()}: could not verify {verdict.ref.reference}"
    return dataclasses.replace(
        verdict,
        message=f"{text} (rule {verdict.match.rule!r} fails open, but the request is denied for the "
        f"reasons given): {verdict.reason}",
    )


def unauthorized(ref: ArtifactReference, match: RuleMatch, err: RegistryAuthError) -> ArtifactVerdict:
    """The registry wants credentials guard does not have (or refused them). The pipeline
    passes a ``match`` that does not fail open: the registry answered."""
    return unverifiable(
        ref,
        match,
        f"the registry refused access ({err})",
        "give the webhook registry credentials (admission.registry.dockerConfig; in the Helm "
        "chart, registry.credentialsSecret)",
    )
