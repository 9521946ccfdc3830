"""Build the AdmissionReview response from an outcome: a pure function, no I/O.

- ``allowed`` and ``status{code,message}``: 200 when allowed, 403 with every reason when denied.
- ``warnings``: warn-mode violations, fail-open allowances, tags resolved to digests.
- ``auditAnnotations``: the decision id, what was verified and by whom, dry-run violations.
  Keys are short names; the API server prefixes them with the webhook's name.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core

from guard.admission.outcome import AdmissionOutcome, ArtifactVerdict
from guard.admission.review import API_VERSION, AdmissionResponse, AdmissionReviewResponse, Status
from guard.memo import keep

MAX_WARNING_CHARS = 256  # the API server may truncate longer warnings
MAX_WARNINGS = 20
MAX_MESSAGE_CHARS = 4096
MAX_ANNOTATION_CHARS = 4096


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def warnings_of(outcome: AdmissionOutcome) -> tuple[str, ...]:
    items: list[str] = list(outcome.warnings)
    for verdict in outcome.artifacts:
        if verdict.effect == "warn" and verdict.message:
            items.append(verdict.message)
        if verdict.resolved_from_tag and verdict.digest:
            items.append(
                f"{verdict.ref.reference} is a tag; guard verified {verdict.digest}: pin the digest "
                f"so the cluster runs exactly what was verified"
            )
    for violation in outcome.violations:
        if violation.action == "warn":
            items.append(f"[{violation.policy}] {violation.message}")
    unique = list(dict.fromkeys(items))
    clipped = [_clip(w, MAX_WARNING_CHARS) for w in unique[:MAX_WARNINGS]]
    if len(unique) > MAX_WARNINGS:
        clipped.append(f"... and {len(unique) - MAX_WARNINGS} more warnings (see the guard logs)")
    return tuple(clipped)


def _restates(message: str, reason: str | None) -> bool:
    return reason is not None and reason in message


def deny_message(outcome: AdmissionOutcome) -> str:
    reasons: list[str] = []
    if outcome.message:
        reasons.append(outcome.message)
    reasons.extend(v.message for v in outcome.artifacts if v.effect == "deny")
    # A policy that restates a verification failure already given (same artifact, same cause)
    # adds nothing for the reader; it stays in the logs and metrics.
    denied = {v.ref.reference: v.reason for v in outcome.artifacts if v.effect == "deny" and v.reason}
    reasons.extend(
        f"[{v.policy}] {v.message}"
        for v in outcome.violations
        if v.action == "deny" and not _restates(v.message, denied.get(v.artifact or ""))
    )
    if not reasons:  # never deny without saying why
        reasons.append("denied by guard")
    head = f"guard denied this {outcome.kind} (decision {outcome.decision_id}): "
    return _clip(head + "; ".join(dict.fromkeys(reasons)), MAX_MESSAGE_CHARS)


# the "verified" annotation of a request's verified artifacts, by what it is made of (the verified
# artifacts by identity, each entry keeping them alive): a model's pods bring the same ones
_VERIFIED: dict[tuple[Any, ...], tuple[tuple[ArtifactVerdict, ...], str]] = {}
_VERIFIED_KEPT = 1024


def _verified_note(verdicts: tuple[ArtifactVerdict, ...]) -> str:
    key = tuple((v.ref.reference, v.digest, v.match.rule, id(v.artifact)) for v in verdicts)
    found = _VERIFIED.get(key)
    if found is not None and all(a.artifact is b.artifact for a, b in zip(found[0], verdicts, strict=True)):
        return found[1]
    verified = [
        {
            "reference": v.ref.reference,
            "digest": v.digest,
            "rule": v.match.rule,
            "signers": [s.identity for s in v.artifact.signers],  # type: ignore[union-attr]
            # which signature format verified (oms, cosign-bundle, cosign-legacy), per signer
            "formats": [s.details.get("format") for s in v.artifact.signers],  # type: ignore[union-attr]
        }
        for v in verdicts
    ]
    note = _clip(json.dumps(verified, separators=(",", ":")), MAX_ANNOTATION_CHARS)
    return keep(_VERIFIED, key, (verdicts, note), _VERIFIED_KEPT)[1]


def audit_annotations(outcome: AdmissionOutcome) -> dict[str, str]:
    notes: dict[str, str] = {"decision-id": outcome.decision_id, "decision": outcome.decision}
    verified = tuple(v for v in outcome.artifacts if v.artifact is not None)
    if verified:
        notes["verified"] = _verified_note(verified)
    # model sources admitted without verification (policy.allowed_model_sources, or a lenient
    # unmatched_artifacts): the record says which, and where
    unverified = [
        {"source": v.ref.reference, "where": [o.location for o in v.ref.occurrences[:3]]}
        for v in outcome.artifacts
        if not v.ref.is_oci and v.effect != "deny"
    ]
    if unverified:
        notes["unverified-sources"] = _clip(
            json.dumps(unverified, separators=(",", ":")), MAX_ANNOTATION_CHARS
        )
    dry = [f"[{v.policy}] {v.message}" for v in outcome.violations if v.action == "dryrun"]
    if dry:
        notes["dryrun-violations"] = _clip(json.dumps(dry), MAX_ANNOTATION_CHARS)
    if outcome.dry_run:
        notes["dry-run"] = "true"
    notes.update(outcome.notes)
    return notes


def _response_fields(outcome: AdmissionOutcome, warn_only: bool) -> dict[str, Any]:
    """The ``AdmissionResponse`` fields for ``outcome``, by their Python names; ``status`` as a
    dict of ``Status`` fields; None: absent."""
    warnings = warnings_of(outcome)
    if warn_only and not outcome.allowed:
        message = _clip(f"guard (mode warn) would deny: {deny_message(outcome)}", MAX_WARNING_CHARS)
        annotations = dict(audit_annotations(outcome) or {})
        annotations["would-deny"] = _clip(deny_message(outcome), MAX_ANNOTATION_CHARS)
        return {
            "uid": outcome.uid,
            "allowed": True,
            "status": None,
            "warnings": (message, *warnings)[:MAX_WARNINGS],
            "audit_annotations": annotations,
        }
    status: dict[str, Any] | None
    if outcome.allowed:
        status = {"code": 200, "message": outcome.message} if outcome.message else None
    else:
        status = {"code": 403, "message": deny_message(outcome), "reason": "Forbidden"}
    return {
        "uid": outcome.uid,
        "allowed": outcome.allowed,
        "status": status,
        "warnings": warnings or None,
        "audit_annotations": audit_annotations(outcome),
    }


def build_response(outcome: AdmissionOutcome, *, warn_only: bool = False) -> AdmissionReviewResponse:
    """The AdmissionReview response for ``outcome`` (the uid is echoed). ``warn_only``
    (admission.mode warn): a denial is admitted, its message the first warning."""
    fields = _response_fields(outcome, warn_only)
    status = fields["status"]
    return AdmissionReviewResponse(
        response=AdmissionResponse(**{**fields, "status": Status(**status) if status is not None else None})
    )


def response_json(outcome: AdmissionOutcome, *, warn_only: bool = False) -> bytes:
    """``build_response(outcome, warn_only=warn_only).to_json()``, the same bytes, without
    building and validating the models on every request (~4x cheaper)."""
    fields = _response_fields(outcome, warn_only)
    response: dict[str, Any] = {"uid": fields["uid"], "allowed": fields["allowed"]}
    status = fields["status"]
    if status is not None:
        response["status"] = {k: v for k, v in status.items() if v is not None}
    if fields["warnings"] is not None:
        response["warnings"] = fields["warnings"]
    if fields["audit_annotations"] is not None:
        response["auditAnnotations"] = fields["audit_annotations"]
    return pydantic_core.to_json({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response})
