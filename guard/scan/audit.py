"""Audit: each workload through admission's own engine, with operation ``AUDIT``.

For each workload (a top owner, or a sample pod standing for an owner that was not listed):

1. Build the AdmissionRequest admission would get for it (operation ``AUDIT``) and let the
   engine verify every reference (its verifier, cache, single-flight, deadline, caps) against
   the *current* config and evaluate the policy library on the same input contract. Enforcement
   modes are reported, not applied: a warn or dryrun violation is a finding.
2. Pods whose containers run a reference the template does not declare (a rollout in progress,
   a pod edited by hand) get their sample pod evaluated too, so what runs is what is checked.
3. Compare each running container's ``imageID`` digest with the digest guard verified for its
   reference: a different one is drift (a tag that moved, a node cache, a TOCTOU).
4. Match every verified artifact against the recalls: manifest, any layer, or a signer.

Findings are built by ``guard.scan.findings``; this module only gathers facts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from guard.admission.outcome import AdmissionOutcome, ArtifactVerdict
from guard.admission.pipeline import AdmissionEngine
from guard.admission.policies import policy_artifact
from guard.admission.recalls import RecallIndex, RecallMatch
from guard.admission.references import walk
from guard.admission.review import AdmissionRequest, GroupVersionKind, GroupVersionResource
from guard.config import GuardConfig
from guard.errors import GuardError
from guard.scan.inventory import PodGroup, WorkloadUnit
from guard.scan.targets import ScanTarget

log = logging.getLogger("guard.scan")


class AuditRequest(AdmissionRequest):
    """An AdmissionRequest for an object that is already running: policies see operation
    ``AUDIT``. Built by the scanner only; the webhook's wire model still refuses it."""

    operation: Literal["AUDIT"] = "AUDIT"  # type: ignore[assignment]


def running_digest(image_id: str) -> str | None:
    """The manifest digest in a container status ``imageID`` (``repo@sha256:...``,
    ``docker-pullable://repo@sha256:...``); None for a bare image config id (``sha256:...``
    from some runtimes), which names no manifest and cannot be compared."""
    if "@" not in image_id:
        return None
    digest = image_id.rsplit("@", 1)[1]
    return digest if digest.startswith("sha256:") and len(digest) == 71 else None


@dataclass
class Running:
    digest: str
    pods: int
    containers: set[str] = field(default_factory=set)


@dataclass
class ArtifactFacts:
    verdict: ArtifactVerdict
    is_model: bool
    running: dict[str, Running] = field(default_factory=dict)  # by running digest
    recall: RecallMatch | None = None
    resolved: str | None = None  # the digest the reference names now (also when verification failed)


@dataclass
class WorkloadFacts:
    unit: WorkloadUnit
    tenant: str | None
    exempt: bool
    outcomes: list[AdmissionOutcome] = field(default_factory=list)
    artifacts: dict[str, ArtifactFacts] = field(default_factory=dict)  # by reference
    gpus: int = 0
    gpu_products: tuple[str, ...] = ()
    errors: list[str] = field(default_factory=list)

    @property
    def ai(self) -> bool:
        return self.gpus > 0 or any(a.is_model for a in self.artifacts.values())


def _request(unit: WorkloadUnit, target: ScanTarget, body: Mapping[str, Any], uid: str) -> AuditRequest:
    api_version = body.get("apiVersion") if isinstance(body.get("apiVersion"), str) else target.api_version
    group, _, version = str(api_version).rpartition("/")
    meta = body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}
    name = meta.get("name") if isinstance(meta, Mapping) and isinstance(meta.get("name"), str) else unit.name
    return AuditRequest(
        uid=uid,
        kind=GroupVersionKind(group=group, version=version or "v1", kind=target.kind),
        resource=GroupVersionResource(
            group=group, version=version or "v1", resource=target.resource or target.kind.lower() + "s"
        ),
        name=name,
        namespace=unit.namespace,
        object=dict(body),
    )


def _gpu_summary(
    config: GuardConfig, target: ScanTarget, body: Mapping[str, Any]
) -> tuple[int, tuple[str, ...]]:
    from guard.policy.workload import summarize_pod_spec  # noqa: PLC0415

    total, products = 0, set[str]()
    for path in target.spec.pod_specs:
        for _, spec in walk(body, path):
            if not isinstance(spec, Mapping) or not spec.get("containers"):
                continue
            try:
                summary = summarize_pod_spec(spec, config.cluster)
            except GuardError:
                continue  # the policies report a malformed spec; here it only counts no GPU
            total += int(summary["gpu"]["total"])
            products.update(str(p) for p in summary["placement"]["gpuProducts"] or ())
    return total, tuple(sorted(products))


class Auditor:
    """Audits workloads through one admission engine (built without recalls: the auditor matches
    them itself, on verified artifacts, so a finding can name the layer or signer matched)."""

    def __init__(
        self,
        config: GuardConfig,
        engine: AdmissionEngine,
        *,
        scan_id: str,
        deadline_seconds: float = 60.0,
        concurrency: int = 16,
    ) -> None:
        self._config = config
        self._engine = engine
        self._scan_id = scan_id
        self._deadline = deadline_seconds
        self._semaphore = asyncio.Semaphore(max(1, concurrency))
        self._recalls = RecallIndex(config.recalls)
        self._exempt = frozenset(config.admission.exempt_namespaces)
        self._count = 0

    async def audit(
        self, units: Sequence[WorkloadUnit], progress: Callable[[WorkloadFacts], None] | None = None
    ) -> list[WorkloadFacts]:
        async def one(unit: WorkloadUnit) -> WorkloadFacts:
            async with self._semaphore:
                facts = await self._audit(unit)
            if progress is not None:
                progress(facts)
            return facts

        return list(await asyncio.gather(*(one(u) for u in units)))

    async def _evaluate(
        self, unit: WorkloadUnit, target: ScanTarget, body: Mapping[str, Any]
    ) -> AdmissionOutcome:
        self._count += 1
        request = _request(unit, target, body, f"{self._scan_id}-{self._count}")
        return await self._engine.evaluate_object(request, deadline_seconds=self._deadline)

    async def _audit(self, unit: WorkloadUnit) -> WorkloadFacts:
        tenant = self._config.tenant_for(unit.namespace)
        facts = WorkloadFacts(
            unit=unit, tenant=tenant.name if tenant else None, exempt=unit.namespace in self._exempt
        )
        facts.gpus, facts.gpu_products = _gpu_summary(self._config, unit.target, unit.body)
        if facts.exempt:
            return facts  # admission never checks these namespaces; the scan reports them as exempt
        # 1. the workload's own object
        self._add(facts, await self._evaluate(unit, unit.target, unit.body))
        # 2. pods running references the template does not declare
        for group in unit.groups:
            if group.sample is not unit.body and self._undeclared(facts, group):
                self._add(facts, await self._evaluate(unit, group.target, group.sample))
        # 3. drift
        for group in unit.groups:
            self._running(facts, group)
        for art in facts.artifacts.values():
            art.resolved = art.verdict.digest
            covered = art.verdict.match.rule is not None  # a reference no rule covers is never resolved
            if art.resolved is None and art.running and art.verdict.ref.is_oci and covered:
                try:  # verification failed after resolving: what does the tag name now?
                    art.resolved = await self._engine.resolve(art.verdict.ref.reference)
                except GuardError:
                    art.resolved = None
        # 4. recalls
        if self._recalls:
            for art in facts.artifacts.values():
                if art.verdict.artifact is not None:
                    art.recall = self._recalls.artifact(art.verdict.artifact)
                elif art.verdict.digest is not None:
                    art.recall = self._recalls.manifest(art.verdict.digest)
        return facts

    @staticmethod
    def _undeclared(facts: WorkloadFacts, group: PodGroup) -> bool:
        return any(image not in facts.artifacts for (_, image, _) in group.running)

    @staticmethod
    def _add(facts: WorkloadFacts, outcome: AdmissionOutcome) -> None:
        facts.outcomes.append(outcome)
        if outcome.message:
            facts.errors.append(outcome.message)
        for verdict in outcome.artifacts:
            if verdict.ref.reference not in facts.artifacts:
                is_model = policy_artifact(verdict).is_model if verdict.ref.is_oci else True
                facts.artifacts[verdict.ref.reference] = ArtifactFacts(verdict=verdict, is_model=is_model)

    @staticmethod
    def _running(facts: WorkloadFacts, group: PodGroup) -> None:
        for (container, image, image_id), pods in group.running.items():
            art = facts.artifacts.get(image)
            digest = running_digest(image_id)
            if art is None or digest is None:
                continue
            entry = art.running.setdefault(digest, Running(digest=digest, pods=0))
            entry.pods += pods
            entry.containers.add(container)
