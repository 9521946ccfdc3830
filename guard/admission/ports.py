"""The narrow seams of the admission engine.

The pipeline depends only on these Protocols: which trust rule covers a reference
(``TrustRules``), how a reference is resolved and verified against a registry
(``ReferenceVerifier``), and how policies judge the request with the verified facts
(``PolicyEvaluator``). ``guard.admission.wiring`` adapts the real OCI, signing, attestation and
policy capabilities to them; ``guard.testing.admission`` has fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from guard.signing.types import SignerInfo

if TYPE_CHECKING:
    from guard.admission.outcome import ArtifactVerdict
    from guard.admission.review import AdmissionRequest

UnmatchedAction = Literal["deny", "warn", "allow"]
EnforcementAction = Literal["deny", "warn", "dryrun"]


@dataclass(frozen=True)
class RuleMatch:
    """The trust rule that covers one reference in one namespace.

    ``rule`` is None when no rule matches; then ``unmatched`` says what happens. ``trust_hash``
    identifies everything the verification depends on (authorities, required attestations), so a
    cached verdict is never reused under another trust configuration. ``fail_open``: when the
    registry cannot answer in time, allow with a warning instead of denying.
    """

    rule: str | None
    trust_hash: str
    unmatched: UnmatchedAction = "deny"
    fail_open: bool = False


@dataclass(frozen=True)
class VerifiedArtifact:
    """A reference whose signature (and required attestations) verified, with its facts."""

    reference: str
    digest: str
    signers: tuple[SignerInfo, ...]
    facts: Mapping[str, Any] = field(default_factory=dict)
    layers: tuple[str, ...] = ()  # layer digests of the manifest (recalls match them)
    signatures: tuple[str, ...] = ()  # digests of the signature referrers that verified, per signer
    # names of the config authorities whose signatures verified (None: not known, e.g. a
    # verifier that does not say: the rule's authorities then stand for them)
    authorities: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Violation:
    """One policy violation (data, not an exception)."""

    policy: str
    rule: str
    message: str
    severity: str = "high"
    action: EnforcementAction = "deny"
    artifact: str | None = None  # the reference it is about, when it is about one
    controls: tuple[str, ...] = ()  # the controls the policy maps to (audits group by them)
    container: str | None = None  # the container it is about, when the policy names one


@dataclass(frozen=True)
class PolicyResult:
    """What the policies said: every violation, and which policies were evaluated."""

    violations: tuple[Violation, ...] = ()
    policies: tuple[str, ...] = ()


class TrustRules(Protocol):
    def match(self, reference: str, namespace: str) -> RuleMatch:
        """The most specific rule for ``reference`` (without ``oci://``) in ``namespace``."""
        ...


class ReferenceVerifier(Protocol):
    """Resolves and verifies references against registries. Blocking calls: the pipeline runs
    them in a thread pool, many at once."""

    def resolve(self, reference: str) -> str:
        """The digest (``sha256:<hex>``) a reference names now. Raises NotFoundError,
        RegistryError (InfrastructureError family)."""
        ...

    def verify(self, reference: str, digest: str, rule: RuleMatch) -> VerifiedArtifact:
        """Verify ``reference`` pinned at ``digest`` under ``rule``: signature by an authority of
        the rule, attestations it requires, model facts. Raises VerificationError (untrusted)
        or InfrastructureError (could not find out)."""
        ...

    def answered_recently(self, reference: str, seconds: float) -> bool:
        """Whether the registry of ``reference`` answered any request within the last
        ``seconds``. A fail-open rule covers a registry that cannot be reached; when it is
        answering and a verification still runs out of time, the time went on content a pusher
        chose (thousands of referrers) or on a drip, and the reference is denied."""
        ...


class PolicyEvaluator(Protocol):
    async def evaluate(
        self,
        request: AdmissionRequest,
        artifacts: Sequence[ArtifactVerdict],
        *,
        template: bytes | None = None,
    ) -> PolicyResult:
        """Judge the request with the verified artifacts. Raises PolicyEngineError when the
        engine itself fails (never for a deny). ``template``: the object's ``template_digest``
        (``guard.admission.references``), when the caller made it: an evaluator may keep the
        result of a template's pods by it."""
        ...
