"""The report model: what every renderer (html, md, csv, json, sarif, junit, oscal) shows.

``build_report(result, ...)`` turns a scan result document (``guard.scan.result.ScanResult``) into
a ``Report``: a summary per scope (cluster, each tenant, each namespace) with compliance per
control (Kubescape's formula: passed resources / assessed resources), open findings by severity,
energy and CO2e against the budget when the scan had them; the control coverage matrix over the
shipped catalogue; the findings, most severe first; deltas against a previous result by the
scan's stable fingerprints; and the evidence appendix. It is pure: no I/O, no clock.

Per control and workload: the workload is *assessed* for a control when a policy mapped to the
control was evaluated on it, or a finding on it cites the control; it *fails* when such an
evaluation failed or such a finding exists; an evaluation in error counts as assessed and not
passed (an audit that could not decide does not pass).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guard.report.catalogue import Catalogue
from guard.scan.result import SEVERITY_ORDER, Finding, ScanResult, Severity, Workload

REPORT_API_VERSION: Final = "guard.cnai.dev/report/v1"
ScopeKind = Literal["cluster", "tenant", "namespace"]
ControlStatus = Literal["pass", "fail", "not-assessed"]
DeltaState = Literal["new", "persisting"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScopeFilter(_Model):
    """``--scope tenant=NAME`` / ``--scope namespace=NAME``: the report covers only that."""

    kind: Literal["tenant", "namespace"]
    name: str = Field(min_length=1)

    @classmethod
    def parse(cls, text: str) -> ScopeFilter:
        from guard.errors import UsageError  # noqa: PLC0415

        kind, sep, name = text.partition("=")
        if not sep or kind not in ("tenant", "namespace") or not name:
            raise UsageError(f"--scope: expected tenant=NAME or namespace=NAME, found {text!r}")
        return cls(kind=kind, name=name)

    def admits(self, tenant: str | None, namespace: str) -> bool:
        return (tenant if self.kind == "tenant" else namespace) == self.name


class ControlRow(_Model):
    """One control in one scope: the rules that assess it and what they found."""

    id: str
    title: str
    framework: str
    family: str
    in_catalogue: bool = True
    rules: tuple[str, ...] = Field(description="Policies (and guard.* checks) that assess this control.")
    assessed: int = Field(ge=0, description="Workloads assessed for this control.")
    passed: int = Field(ge=0)
    failed: int = Field(ge=0)
    errors: int = Field(ge=0, description="Workloads whose evaluation was in error (assessed, not passed).")
    compliance: float | None = Field(description="passed / assessed (0..1); None when not assessed.")
    status: ControlStatus
    note: str | None = None


class EnergyRow(_Model):
    """Energy and carbon of one tenant (or the whole scope), with the budget when one is set."""

    tenant: str
    kwh: float
    kwh_by_method: dict[str, float]
    kg_co2e: float
    budget_kg_co2e: float | None = None
    used_kg_co2e: float | None = None
    forecast_kg_co2e: float | None = None
    period: str | None = None

    @property
    def over_budget(self) -> bool:
        return (
            self.budget_kg_co2e is not None and (self.forecast_kg_co2e or self.kg_co2e) > self.budget_kg_co2e
        )


class ScopeSummary(_Model):
    kind: ScopeKind
    name: str
    workloads: int
    ai_workloads: int
    pods: int
    findings_by_severity: dict[str, int]
    controls_assessed: int
    controls_failed: int
    compliance: float | None = Field(description="Mean compliance over the controls assessed (0..1).")
    controls: tuple[ControlRow, ...] = Field(description="Controls assessed in this scope.")
    energy: EnergyRow | None = None


class FindingRow(_Model):
    fingerprint: str
    severity: Severity
    category: str
    rule: str
    policy: str | None
    enforcement: str | None
    kind: str
    namespace: str
    name: str
    tenant: str | None
    replicas: int
    owner_chain: tuple[str, ...] = Field(description="'Kind/name' from the top owner down.")
    container: str | None
    artifact: str | None
    digest: str | None
    running_digest: str | None
    signer: str | None
    bundle_digest: str | None
    log_index: int | None
    message: str
    remediation: str | None
    controls: tuple[str, ...]
    first_seen: datetime
    delta: DeltaState | None = Field(description="Against --previous: new or persisting; None without one.")


class Deltas(_Model):
    previous_scan: str
    previous_finished: datetime
    new: tuple[str, ...] = Field(description="Fingerprints of findings not in the previous result.")
    persisting: tuple[str, ...]
    resolved: tuple[FindingRow, ...] = Field(description="Findings of the previous result now gone.")


class SourceRow(_Model):
    type: str
    name: str
    server: str | None
    kinds: tuple[str, ...] = Field(description="'Kind: N objects' per kind listed.")


class Appendix(_Model):
    guard_version: str
    report_guard_version: str
    config_hash: str
    policy_library_digest: str | None
    scan_id: str
    started: datetime
    finished: datetime
    partial: bool
    partial_reasons: tuple[str, ...]
    sources: tuple[SourceRow, ...]
    not_assessed: tuple[str, ...] = Field(description="Kinds not assessed and why.")
    list_restarts: int
    shard: str | None
    merged_from: tuple[str, ...]
    prometheus_url: str | None = None
    energy_window: str | None = None
    intensity_dataset: str | None = None
    energy_note: str | None = None
    frameworks: tuple[str, ...] = Field(description="Frameworks of the control catalogue, with versions.")


class Report(_Model):
    api_version: Literal["guard.cnai.dev/report/v1"] = REPORT_API_VERSION
    kind: Literal["Report"] = "Report"
    title: str
    generated: datetime
    cluster: str
    scope: ScopeFilter | None
    summaries: tuple[ScopeSummary, ...] = Field(
        description="The report's scope first, then tenants, namespaces."
    )
    coverage: tuple[ControlRow, ...] = Field(description="Every catalogue control, assessed or not.")
    findings: tuple[FindingRow, ...] = Field(description="Most severe first.")
    deltas: Deltas | None
    appendix: Appendix

    @property
    def overall(self) -> ScopeSummary:
        return self.summaries[0]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def report_schema() -> dict[str, Any]:
    schema = Report.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://guard.cnai.dev/schemas/report/v1.json"
    return schema


# --- building -----------------------------------------------------------------------------------


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


def _control_rows(
    workloads: Sequence[Workload],
    findings: Sequence[Finding],
    policy_controls: dict[str, tuple[str, ...]],
    catalogue: Catalogue,
    only: Iterable[str] | None = None,
) -> list[ControlRow]:
    """Rows for ``only`` (every catalogue control, plus cited unknown ones) or for the assessed ones."""
    rules: dict[str, set[str]] = defaultdict(set)
    for policy, controls in policy_controls.items():
        for control in controls:
            rules[control].add(policy)
    state: dict[str, dict[str, str]] = defaultdict(dict)  # control -> workload id -> pass/fail/error
    order = {"pass": 0, "error": 1, "fail": 2}

    def mark(control: str, workload: str, value: str) -> None:
        current = state[control].get(workload)
        if current is None or order[value] > order[current]:
            state[control][workload] = value

    cited: dict[tuple[str, str], set[str]] = defaultdict(
        set
    )  # (workload, policy) -> controls its findings cite
    for f in findings:
        if f.policy is not None:
            cited[(f.workload_id, f.policy)].update(f.controls)
    for w in workloads:
        for ev in w.evaluations:
            failing = cited.get((w.id, ev.policy))
            for control in policy_controls.get(ev.policy, ()):
                # a failed policy fails the controls its findings cite; the others it checked passed
                # (when its findings are not in the document, all of its controls fail)
                result = "pass" if ev.result == "fail" and failing and control not in failing else ev.result
                mark(control, w.id, result)
    for f in findings:
        for control in f.controls:
            rules[control].add(f.policy or f.rule)
            mark(control, f.workload_id, "fail")
    wanted = list(only) if only is not None else sorted(state)
    extra = sorted(c for c in {*state, *rules} if c not in catalogue and c not in wanted)
    rows = []
    for cid in [*wanted, *(extra if only is not None else [])]:
        entry = catalogue.get(cid)
        results = Counter(state.get(cid, {}).values())
        assessed = sum(results.values())
        passed, failed, errors = results["pass"], results["fail"], results["error"]
        rows.append(
            ControlRow(
                id=cid,
                title=entry.title if entry else "(not in guard's control catalogue)",
                framework=entry.framework if entry else cid.split(" ", 1)[0],
                family=entry.family if entry else "-",
                in_catalogue=entry is not None,
                rules=tuple(sorted(rules.get(cid, ()))),
                assessed=assessed,
                passed=passed,
                failed=failed,
                errors=errors,
                compliance=passed / assessed if assessed else None,
                status="not-assessed" if not assessed else ("pass" if passed == assessed else "fail"),
                note=None
                if assessed
                else (
                    "not assessed by guard: no guard rule maps to it"
                    if not rules.get(cid)
                    else "not assessed: its rules found no workload to evaluate in scope"
                ),
            )
        )
    return rows


def _by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {s: counts.get(s, 0) for s in SEVERITY_ORDER}


class _Budget(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    period: str | None = None
    budget_kg_co2e: float | None = None
    used_kg_co2e: float | None = None
    forecast_kg_co2e: float | None = None


class _TenantEnergy(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    tenant: str
    kwh: float
    kwh_by_method: dict[str, float] = {}
    operational_kg_co2e: float
    embodied_kg_co2e: float | None = None
    budget: _Budget | None = None


class _EnergySource(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    kind: str | None = None
    url: str | None = None


class _Energy(BaseModel):
    """What the report reads of the scan's ``energy`` section (issue 11); the rest is ignored."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    since: datetime | None = None
    until: datetime | None = None
    source: _EnergySource | None = None
    intensity_table: str | None = None
    tenants: tuple[_TenantEnergy, ...] = ()


def _read_energy(raw: dict[str, Any] | None) -> tuple[_Energy | None, str | None]:
    if raw is None:
        return None, None
    try:
        return _Energy.model_validate(raw), None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return None, f"energy section not read (energy.{where}: {first['msg']}); energy is left out"


def _energy_row(tenant: str, parts: Sequence[_TenantEnergy]) -> EnergyRow | None:
    if not parts:
        return None
    methods: Counter[str] = Counter()
    for p in parts:
        methods.update(p.kwh_by_method)
    budgets = [p.budget for p in parts if p.budget is not None]

    def total(values: list[float | None]) -> float | None:
        return (
            None if not values or any(v is None for v in values) else sum(v for v in values if v is not None)
        )

    return EnergyRow(
        tenant=tenant,
        kwh=sum(p.kwh for p in parts),
        kwh_by_method=dict(methods),
        kg_co2e=sum(p.operational_kg_co2e + (p.embodied_kg_co2e or 0.0) for p in parts),
        budget_kg_co2e=total([b.budget_kg_co2e for b in budgets]),
        used_kg_co2e=total([b.used_kg_co2e for b in budgets]),
        forecast_kg_co2e=total([b.forecast_kg_co2e for b in budgets]),
        period=budgets[0].period if budgets else None,
    )


def _summary(  # noqa: PLR0917 (internal, called in three places with the same shape)
    kind: ScopeKind,
    name: str,
    workloads: Sequence[Workload],
    findings: Sequence[Finding],
    policy_controls: dict[str, tuple[str, ...]],
    catalogue: Catalogue,
    energy: Sequence[_TenantEnergy],
) -> ScopeSummary:
    rows = [r for r in _control_rows(workloads, findings, policy_controls, catalogue) if r.assessed]
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
        energy=_energy_row(name if kind != "cluster" else "all tenants", energy),
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
    energy: _Energy | None,
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


def _policy_controls(result: ScanResult) -> dict[str, tuple[str, ...]]:
    """Each policy's controls: the run's policy catalog, plus what its findings cite (a policy may
    cite a control in one violation only, e.g. PSS-Restricted for privilege escalation): a policy
    evaluated on a workload assessed it for every control the policy can cite."""
    out = {p.name: list(p.controls) for p in result.policies}
    for f in result.findings:
        if f.policy is not None:
            known = out.setdefault(f.policy, [])
            known += [c for c in f.controls if c not in known]
    return {name: tuple(controls) for name, controls in out.items()}


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
    policy_controls = _policy_controls(result)
    energy, energy_note = _read_energy(result.energy)
    tenant_energy = list(energy.tenants) if energy else []

    summaries = []
    top_kind: ScopeKind = "cluster" if scope is None else scope.kind
    top_name = cluster_name(result) if scope is None else scope.name
    top_energy = (
        tenant_energy
        if scope is None
        else ([t for t in tenant_energy if t.tenant == scope.name] if scope.kind == "tenant" else [])
    )
    summaries.append(
        _summary(top_kind, top_name, workloads, findings, policy_controls, catalogue, top_energy)
    )
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
                        policy_controls,
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
                    policy_controls,
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

    coverage = _control_rows(
        workloads, findings, policy_controls, catalogue, only=[c.id for c in catalogue.controls]
    )
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
        appendix=_appendix(result, energy, energy_note, catalogue, report_version or __version__),
    )
