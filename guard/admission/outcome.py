"""What the pipeline found, as plain values: one verdict per reference, and the decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from guard.admission.ports import RuleMatch, VerifiedArtifact, Violation
from guard.admission.references import ArtifactReference

# verified: signature (and attestations) hold; unmatched: no rule, the default applied;
# failed: verification said no; error: could not find out (registry, deadline, bug).
VerdictStatus = Literal["verified", "unmatched", "failed", "error"]
Effect = Literal["pass", "warn", "deny"]
# For metrics and logs: how the request was decided.
DecisionKind = Literal["allowed", "warned", "denied", "exempt", "skipped"]


@dataclass(frozen=True)
class ArtifactVerdict:
    """The verdict on one distinct reference of the request."""

    ref: ArtifactReference
    match: RuleMatch
    status: VerdictStatus
    effect: Effect
    message: str = ""  # for the user: where, what, why
    reason: str = ""  # the bare cause, for policies (``verification.reason``)
    digest: str | None = None
    resolved_from_tag: bool = False
    artifact: VerifiedArtifact | None = None


@dataclass(frozen=True)
class AdmissionOutcome:
    """The decision on one admission request, before it is put on the wire."""

    uid: str
    decision_id: str
    decision: DecisionKind
    kind: str
    message: str = ""
    dry_run: bool = False
    artifacts: tuple[ArtifactVerdict, ...] = ()
    violations: tuple[Violation, ...] = ()
    policies: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.decision != "denied"
