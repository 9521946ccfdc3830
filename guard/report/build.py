"""Building the report model from a scan result: ``build_report(result, catalogue, ...)``.

It is pure: no I/O, no clock (``generated`` is given).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from guard.report.catalogue import Catalogue
from guard.report.coverage import control_rows, policy_controls
from guard.report.energy_view import EnergyView, TenantEnergy, energy_row, read_energy
from guard.report.model import (
    Appendix,
    Deltas,
    DeltaState,
    EnergyFindingRow,
    FindingRow,
    Report,
    ScopeFilter,
    ScopeKind,
    ScopeSummary,
    SourceRow,
)
from guard.scan.result import SEVERITY_ORDER, Finding, ScanResult, Workload


def severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def cluster_name(result: ScanResult) -> str:
    """The cluster the scan looked at: its first live source's context, else 'snapshot'."""
    for source in result.scan.sources:
        if source.type == "cluster":
            return source.name
    return "snapshot"


def _in_scope(result: ScanResult, scope: ScopeFilter | None) -> tuple[list[Workload], list[Finding]]:
    if scope is None:
        return list(result.workloads), list(result.findings)
    workloads = [w for w in result.workloads if scope.admits(w.tenant, w.namespace)]
    findings = [f for f in result.findings if scope.admits(f.tenant, f.resource.namespace)]
    return workloads, findings


def _by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {s: counts.get(s, 0) for s in SEVERITY_ORDER}


def _summary(  # noqa: PLR0917 (internal, called in three places with the same shape)
    kind: ScopeKind,
    name: str,
    workloads: Sequence[Workload],
    findings: Sequence[Finding],
    mapping: dict[str, tuple[str, ...]],
    catalogue: Catalogue,
    energy: Sequence[TenantEnergy],
) -> ScopeSummary:
    rows = [r for r in control_rows(workloads, findings, mapping, catalogue) if r.assessed]
    scores = [r.compliance for r in rows if r.compliance is not None]
    return ScopeSummary(
        kind=kind,
        name=name,
        workloads=len(workloads),
        ai_workloads=sum(1 for w in workloads if w.ai),
        pods=sum(w.replicas for w in workloads),
        findings_by_severity=_by_severity(findings),
        controls_assessed=len(rows),
        controls_failed=sum(1 for r in rows if r.status == "fail"),
        compliance=sum(scores) / len(scores) if scores else None,
        controls=tuple(rows),
        energy=energy_row(name if kind != "cluster" else "all tenants", energy),
    )


def _row(f: Finding, delta: DeltaState | None) -> FindingRow:
    e = f.evidence
    return FindingRow(
        fingerprint=f.fingerprint,
        severity=f.severity,
        category=f.category,
        rule=f.rule,
        policy=f.policy,
        enforcement=f.enforcement,
        kind=f.resource.kind,
        namespace=f.resource.namespace,
        name=f.resource.name,
        tenant=f.tenant,
        replicas=f.resource.replicas,
        owner_chain=tuple(f"{o.kind}/{o.name}" for o in f.resource.owner_chain),
        container=f.container,
        artifact=f.artifact or e.reference,
        digest=e.digest,
        running_digest=e.running_digest,
        signer=e.signer_identity,
        bundle_digest=e.bundle_digest,
        log_index=e.log_index,
        message=f.message,
        remediation=f.remediation,
        controls=f.controls,
        first_seen=f.first_seen,
        delta=delta,
    )


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (
            severity_rank(f.severity),
            f.resource.namespace,
            f.resource.name,
            f.rule,
            f.fingerprint,
        ),
    )


def _appendix(
    result: ScanResult,
    energy: EnergyView | None,
    energy_note: str | None,
    catalogue: Catalogue,
    report_version: str,
) -> Appendix:
    s = result.scan
    window = None
    if energy is not None and energy.since and energy.until:
        window = f"{energy.since.isoformat()} .. {energy.until.isoformat()}"
    return Appendix(
        guard_version=s.guard_version,
        report_guard_version=report_version,
        config_hash=s.config_hash,
        policy_library_digest=s.policy_library_digest,
        scan_id=s.id,
        started=s.started,
        finished=s.finished,
        partial=s.partial,
        partial_reasons=s.partial_reasons,
        sources=tuple(
            SourceRow(
                type=src.type,
                name=src.name,
                server=src.server,
                kinds=tuple(f"{k.kind} ({k.api_version}): {k.objects} objects" for k in src.listed),
            )
            for src in s.sources
        ),
        not_assessed=tuple(
            f"{n.kind}{f' ({n.api_version})' if n.api_version else ''}: {n.reason}: {n.message}"
            for n in s.not_assessed
        ),
        list_restarts=s.list_restarts,
        shard=f"{s.shard.index}/{s.shard.count}" if s.shard else None,
        merged_from=s.merged_from,
        prometheus_url=energy.source.url if energy and energy.source else None,
        energy_window=window,
        intensity_dataset=energy.intensity_table if energy else None,
        energy_note=energy_note,
        frameworks=tuple(f"{f.name} ({f.version})" for f in catalogue.frameworks),
    )


def _energy_findings(energy: EnergyView | None, scope: ScopeFilter | None) -> tuple[EnergyFindingRow, ...]:
    if energy is None:
        return ()
    rows = [
        EnergyFindingRow.model_validate(f.model_dump())
        for f in energy.findings
        if scope is None or (f.tenant if scope.kind == "tenant" else f.namespace) == scope.name
    ]
    return tuple(sorted(rows, key=lambda r: (severity_rank(r.severity), r.tenant or "", r.rule)))


def build_report(
    result: ScanResult,
    catalogue: Catalogue,
    *,
    generated: datetime,
    previous: ScanResult | None = None,
    scope: ScopeFilter | None = None,
    report_version: str | None = None,
) -> Report:
    """The report of ``result`` (optionally limited to ``scope``, with deltas against ``previous``)."""
    from guard import __version__  # noqa: PLC0415

    workloads, findings = _in_scope(result, scope)
    mapping = policy_controls(result)
    energy, energy_note = read_energy(result.energy)
    tenant_energy = list(energy.tenants) if energy else []

    summaries = []
    top_kind: ScopeKind = "cluster" if scope is None else scope.kind
    top_name = cluster_name(result) if scope is None else scope.name
    top_energy = (
        tenant_energy
        if scope is None
        else ([t for t in tenant_energy if t.tenant == scope.name] if scope.kind == "tenant" else [])
    )
    summaries.append(_summary(top_kind, top_name, workloads, findings, mapping, catalogue, top_energy))
    if scope is None or scope.kind == "tenant":
        tenants = sorted({w.tenant for w in workloads if w.tenant} | {f.tenant for f in findings if f.tenant})
        if scope is None:
            for t in tenants:
                summaries.append(
                    _summary(
                        "tenant",
                        t,
                        [w for w in workloads if w.tenant == t],
                        [f for f in findings if f.tenant == t],
                        mapping,
                        catalogue,
                        [e for e in tenant_energy if e.tenant == t],
                    )
                )
        for ns in sorted({w.namespace for w in workloads} | {f.resource.namespace for f in findings}):
            summaries.append(
                _summary(
                    "namespace",
                    ns,
                    [w for w in workloads if w.namespace == ns],
                    [f for f in findings if f.resource.namespace == ns],
                    mapping,
                    catalogue,
                    [],
                )
            )

    deltas = None
    states: dict[str, DeltaState] = {}
    if previous is not None:
        _, before = _in_scope(previous, scope)
        before_fps = {f.fingerprint for f in before}
        now_fps = {f.fingerprint for f in findings}
        states = {fp: ("persisting" if fp in before_fps else "new") for fp in now_fps}
        deltas = Deltas(
            previous_scan=previous.scan.id,
            previous_finished=previous.scan.finished,
            new=tuple(f.fingerprint for f in _sorted(findings) if f.fingerprint not in before_fps),
            persisting=tuple(f.fingerprint for f in _sorted(findings) if f.fingerprint in before_fps),
            resolved=tuple(_row(f, None) for f in _sorted(before) if f.fingerprint not in now_fps),
        )

    coverage = control_rows(workloads, findings, mapping, catalogue, only=[c.id for c in catalogue.controls])
    scope_text = f" ({scope.kind} {scope.name})" if scope else ""
    day = result.scan.finished.date().isoformat()
    return Report(
        title=f"guard audit report: {cluster_name(result)}{scope_text}, {day}",
        generated=generated,
        cluster=cluster_name(result),
        scope=scope,
        summaries=tuple(summaries),
        coverage=tuple(coverage),
        findings=tuple(_row(f, states.get(f.fingerprint)) for f in _sorted(findings)),
        deltas=deltas,
        energy_findings=_energy_findings(energy, scope),
        appendix=_appendix(result, energy, energy_note, catalogue, report_version or __version__),
    )
