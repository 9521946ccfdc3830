"""From audit facts to the result's workloads, findings and summary.

Every finding has a stable fingerprint built from what identifies it (workload, category,
policy, rule, container, artifact), never from its message or a time, so the same finding has
the same id on every run and ``--previous`` can carry its first-seen time over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from guard.admission.outcome import ArtifactVerdict
from guard.admission.ports import Violation
from guard.scan.audit import ArtifactFacts, WorkloadFacts
from guard.scan.result import (
    SEVERITY_ORDER,
    ArtifactResult,
    Evidence,
    Finding,
    PolicyEvaluation,
    ResourceRef,
    RunningDigest,
    Severity,
    SignerEvidence,
    Summary,
    Workload,
    fingerprint,
)

_SIGNATURE_POLICY = "supply_chain.signature"  # judges verification statuses: its finding is the one kept


def _severity(value: str) -> Severity:
    return next((s for s in SEVERITY_ORDER if s == value), "high")


def _signers(verdict: ArtifactVerdict) -> tuple[SignerEvidence, ...]:
    artifact = verdict.artifact
    if artifact is None:
        return ()
    bundles = artifact.signatures
    out = []
    for i, signer in enumerate(artifact.signers):
        log_index = signer.details.get("log_index") if signer.details else None
        out.append(
            SignerEvidence(
                method=signer.method,
                identity=signer.identity,
                issuer=signer.issuer,
                bundle_digest=bundles[i] if i < len(bundles) else None,
                log_index=int(log_index) if isinstance(log_index, str) and log_index.isdigit() else None,
            )
        )
    return tuple(out)


def _evidence(art: ArtifactFacts, running: str | None = None) -> Evidence:
    verdict = art.verdict
    signers = _signers(verdict)
    first = signers[0] if signers else None
    return Evidence(
        reference=verdict.ref.reference,
        digest=art.resolved or verdict.digest,
        running_digest=running,
        signer_identity=first.identity if first else None,
        signer_issuer=first.issuer if first else None,
        bundle_digest=first.bundle_digest if first else None,
        log_index=first.log_index if first else None,
        recall=art.recall.recall.id if art.recall else None,
        matched=art.recall.matched if art.recall else None,
    )


def _containers(verdict: ArtifactVerdict) -> tuple[str, ...]:
    return tuple(dict.fromkeys(o.container or o.location for o in verdict.ref.occurrences))


class FindingBuilder:
    def __init__(self, first_seen: Mapping[str, datetime], now: datetime) -> None:
        self._first_seen = first_seen
        self._now = now
        self.findings: list[Finding] = []
        self._seen: set[str] = set()

    def seen(self, unit_id: str, *parts: str | None) -> bool:
        return fingerprint(unit_id, *parts) in self._seen

    def add(
        self, facts: WorkloadFacts, resource: ResourceRef, *, parts: Sequence[str | None], **fields: Any
    ) -> None:
        fp = fingerprint(facts.unit.id, *parts)
        if fp in self._seen:  # the same finding twice (template and sample pod): once
            return
        self._seen.add(fp)
        self.findings.append(
            Finding(
                fingerprint=fp,
                workload_id=facts.unit.id,
                resource=resource,
                tenant=facts.tenant,
                first_seen=self._first_seen.get(fp, self._now),
                **fields,
            )
        )


def _resource(facts: WorkloadFacts) -> ResourceRef:
    unit = facts.unit
    return ResourceRef(
        api_version=unit.api_version,
        kind=unit.kind,
        namespace=unit.namespace,
        name=unit.name,
        replicas=unit.replicas,
        owner_chain=unit.owner_chain,
    )


def _verification_findings(facts: WorkloadFacts, builder: FindingBuilder, covered: set[str]) -> None:
    resource = _resource(facts)
    for ref, art in facts.artifacts.items():
        verdict = art.verdict
        container = _containers(verdict)[0] if verdict.ref.occurrences else None
        if art.recall is not None:
            recall = art.recall.recall
            builder.add(
                facts,
                resource,
                parts=("recall", "guard.recall", recall.id, None, ref),
                category="recall",
                container=container,
                artifact=ref,
                rule=f"recalled_{art.recall.matched}",
                policy="guard.recall",
                severity=recall.severity,
                message=f"{verdict.ref.where()}: {ref} ({verdict.digest}) is recalled ({recall.id}): "
                f"its {art.recall.matched} {art.recall.value} matches; {recall.reason}",
                remediation="replace the artifact with one that is not recalled and roll the workload out",
                evidence=_evidence(art),
            )
        for running in art.running.values():
            if art.resolved is not None and running.digest != art.resolved:
                builder.add(
                    facts,
                    resource,
                    parts=("drift", "guard.drift", "digest_drift", ",".join(sorted(running.containers)), ref),
                    category="drift",
                    container=sorted(running.containers)[0],
                    artifact=ref,
                    rule="digest_drift",
                    policy="guard.drift",
                    severity="high",
                    message=f"{running.pods} pod(s) run {ref} as {running.digest}, but the reference "
                    f"names {art.resolved} now (a tag moved, a node cache, or the image "
                    f"changed after admission)",
                    remediation="pin the reference by digest (image@sha256:...) and roll the workload out",
                    evidence=_evidence(art, running.digest),
                )
        if verdict.effect == "pass" or (ref in covered and verdict.status != "error"):
            continue
        rule = {
            "failed": "verification_failed",
            "unmatched": "unmatched_artifact",
            "error": "unverifiable",
        }.get(verdict.status, "verification_failed")
        builder.add(
            facts,
            resource,
            parts=("verification", "guard.verification", rule, None, ref),
            category="verification",
            container=container,
            artifact=ref,
            rule=rule,
            policy="guard.verification",
            severity="medium" if verdict.effect == "warn" and verdict.status != "error" else "high",
            enforcement="warn" if verdict.effect == "warn" else "deny",
            message=verdict.message or verdict.reason or f"{ref}: {verdict.status}",
            remediation="sign the artifact with an authority of its rule, or fix the rule"
            if verdict.status != "error"
            else "make the registry reachable and scan again (this result is partial)",
            evidence=_evidence(art),
        )


def _policy_findings(facts: WorkloadFacts, builder: FindingBuilder, violations: Iterable[Violation]) -> None:
    resource = _resource(facts)
    for v in violations:
        art = facts.artifacts.get(v.artifact) if v.artifact else None
        container = v.container or (
            _containers(art.verdict)[0] if art and art.verdict.ref.occurrences else None
        )
        parts: tuple[str | None, ...] = ("policy", v.policy, v.rule, container, v.artifact)
        if builder.seen(facts.unit.id, *parts):
            parts = (*parts, v.message)  # two violations alike but for their message
        builder.add(
            facts,
            resource,
            parts=parts,
            category="policy",
            container=container,
            artifact=v.artifact,
            rule=v.rule,
            policy=v.policy,
            severity=_severity(v.severity),
            enforcement=v.action,
            message=v.message,
            controls=v.controls,
            evidence=_evidence(art) if art else Evidence(),
        )


def workload_result(facts: WorkloadFacts, builder: FindingBuilder) -> Workload:
    violations: dict[tuple[str, str, str], Violation] = {}
    policies: dict[str, None] = {}
    for outcome in facts.outcomes:
        policies.update(dict.fromkeys(outcome.policies))
        for v in outcome.violations:
            violations.setdefault((v.policy, v.rule, v.message), v)
    covered = {v.artifact for v in violations.values() if v.policy == _SIGNATURE_POLICY and v.artifact}
    before = len(builder.findings)
    _verification_findings(facts, builder, covered)
    _policy_findings(facts, builder, violations.values())
    per_policy = Counter(f.policy for f in builder.findings[before:] if f.category == "policy")
    policy_error = "; ".join(dict.fromkeys(facts.errors)) or None
    evaluations = tuple(
        PolicyEvaluation(
            policy=name,
            result="error" if policy_error else "fail" if per_policy[name] else "pass",
            findings=per_policy[name],
        )
        for name in policies
    )
    unit = facts.unit
    return Workload(
        id=unit.id,
        api_version=unit.api_version,
        kind=unit.kind,
        namespace=unit.namespace,
        name=unit.name,
        uid=unit.uid,
        tenant=facts.tenant,
        replicas=unit.replicas,
        owner_chain=unit.owner_chain,
        ai=facts.ai,
        exempt=facts.exempt,
        gpus=facts.gpus,
        gpu_products=facts.gpu_products,
        pod_names=tuple(name for g in unit.groups for name in g.names),
        artifacts=tuple(_artifact(a) for a in facts.artifacts.values()),
        evaluations=evaluations,
        policy_error=policy_error,
    )


def _artifact(art: ArtifactFacts) -> ArtifactResult:
    verdict = art.verdict
    status = verdict.status
    reason = verdict.reason or None
    if art.recall is not None:
        status, reason = "failed", f"recalled ({art.recall.recall.id}): {art.recall.recall.reason}"
    return ArtifactResult(
        reference=verdict.ref.reference,
        scheme=verdict.ref.scheme,
        used_by=_containers(verdict),
        is_model=art.is_model,
        rule=verdict.match.rule,
        status=status,
        reason=reason,
        digest=art.resolved or verdict.digest,
        resolved_from_tag=verdict.resolved_from_tag or (art.resolved is not None and not verdict.ref.pinned),
        signers=_signers(verdict),
        layers=verdict.artifact.layers if verdict.artifact else (),
        running=tuple(
            RunningDigest(digest=r.digest, pods=r.pods, containers=tuple(sorted(r.containers)))
            for r in art.running.values()
        ),
    )


def summarize(workloads: Sequence[Workload], findings: Sequence[Finding], pods: int) -> Summary:
    severity = Counter(f.severity for f in findings)
    artifacts = {(a.reference, a.rule): a.status for w in workloads for a in w.artifacts}
    return Summary(
        workloads=len(workloads),
        ai_workloads=sum(1 for w in workloads if w.ai),
        pods=pods,
        artifacts=len(artifacts),
        findings=len(findings),
        by_severity={s: severity[s] for s in SEVERITY_ORDER},
        by_policy=dict(sorted(Counter(f.policy or "" for f in findings).items())),
        by_tenant=dict(sorted(Counter(f.tenant or "" for f in findings).items())),
        by_namespace=dict(sorted(Counter(f.resource.namespace for f in findings).items())),
        by_status=dict(sorted(Counter(artifacts.values()).items())),
        by_category=dict(sorted(Counter(f.category for f in findings).items())),
    )
