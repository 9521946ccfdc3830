"""A scan result document with the shapes reports must handle: several tenants and namespaces,
every severity, pass / fail / error evaluations, drift and recall findings, energy with budgets,
a kind not assessed, and names a cluster user controls (markup, formulas, Markdown syntax)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from guard.report.catalogue import Catalogue, load_catalogue
from guard.scan.result import (
    SEVERITY_ORDER,
    ArtifactResult,
    Evidence,
    Finding,
    KindListing,
    NotAssessed,
    OwnerRef,
    PolicyEvaluation,
    PolicyInfo,
    RbacRule,
    ResourceRef,
    ScanInfo,
    ScanResult,
    Severity,
    SignerEvidence,
    Source,
    Summary,
    Workload,
    fingerprint,
)

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
HOSTILE = '=HYPERLINK("http://x")<script>alert(1)</script>*b*|[l](u)'

POLICIES = (
    PolicyInfo(
        name="supply_chain.signature",
        enforcement="deny",
        controls=("NIST-AI-RMF MANAGE-3.2", "EU-AI-Act Art.15", "CIS-K8s 5.5.1"),
    ),
    PolicyInfo(
        name="carbon.budget", enforcement="warn", controls=("NIST-AI-RMF MEASURE-2.12", "ISO-42001 A.5.5")
    ),
    PolicyInfo(
        name="provenance.datasets", enforcement="dryrun", controls=("EU-AI-Act Art.10", "ISO-42001 A.7.5")
    ),
)


def _workload(
    ns: str, name: str, tenant: str | None, results: dict[str, str], *, ai: bool = True, replicas: int = 2
) -> Workload:
    return Workload(
        id=f"apps/v1/Deployment/{ns}/{name}",
        api_version="apps/v1",
        kind="Deployment",
        namespace=ns,
        name=name,
        tenant=tenant,
        replicas=replicas,
        owner_chain=(
            OwnerRef(api_version="apps/v1", kind="Deployment", name=name),
            OwnerRef(api_version="apps/v1", kind="ReplicaSet", name=f"{name}-7c9f"),
        ),
        ai=ai,
        gpus=1 if ai else 0,
        artifacts=(
            ArtifactResult(
                reference=f"registry.example.com/{ns}/model:v1",
                scheme="oci",
                used_by=("server",),
                is_model=True,
                rule="team-models",
                status="verified" if results.get("supply_chain.signature") == "pass" else "failed",
                digest="sha256:" + "a" * 64,
                signers=(
                    SignerEvidence(
                        method="keyless",
                        identity="ci@example.com",
                        issuer="https://token.actions.githubusercontent.com",
                        bundle_digest="sha256:" + "b" * 64,
                        log_index=42,
                    ),
                ),
            ),
        ),
        evaluations=tuple(
            PolicyEvaluation(policy=p, result=r, findings=int(r == "fail")) for p, r in results.items()
        ),
    )


def _finding(
    w: Workload,
    *,
    rule: str,
    policy: str | None,
    severity: Severity,
    category: str = "policy",
    controls: tuple[str, ...] = (),
    message: str = "",
    container: str = "server",
    first_seen: datetime = T0,
    evidence: Evidence | None = None,
) -> Finding:
    return Finding(
        workload_id=w.id,
        fingerprint=fingerprint(w.id, category, policy, rule, container, None, None),
        category=category,
        resource=ResourceRef(
            api_version=w.api_version,
            kind=w.kind,
            namespace=w.namespace,
            name=w.name,
            replicas=w.replicas,
            owner_chain=w.owner_chain,
        ),
        tenant=w.tenant,
        container=container,
        artifact=w.artifacts[0].reference if w.artifacts else None,
        rule=rule,
        policy=policy,
        severity=severity,
        enforcement="deny" if policy == "supply_chain.signature" else None,
        message=message or f"{rule} on {w.name}",
        remediation="Sign the model with the tenant's key (guard sign) and redeploy.",
        evidence=evidence
        or Evidence(reference=w.artifacts[0].reference if w.artifacts else None, digest="sha256:" + "a" * 64),
        controls=controls,
        first_seen=first_seen,
    )


def _summary(workloads: tuple[Workload, ...], findings: tuple[Finding, ...]) -> Summary:
    def count(key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in findings:
            value = {
                "severity": f.severity,
                "policy": f.policy or f.rule,
                "tenant": f.tenant or "",
                "namespace": f.resource.namespace,
                "category": f.category,
            }[key]
            out[value] = out.get(value, 0) + 1
        return out

    by_severity = {s: count("severity").get(s, 0) for s in SEVERITY_ORDER}
    return Summary(
        workloads=len(workloads),
        ai_workloads=sum(w.ai for w in workloads),
        pods=sum(w.replicas for w in workloads),
        artifacts=len(workloads),
        findings=len(findings),
        by_severity=by_severity,
        by_policy=count("policy"),
        by_tenant=count("tenant"),
        by_namespace=count("namespace"),
        by_category=count("category"),
        by_status={"verified": 2, "failed": 2},
    )


def energy_section() -> dict[str, object]:
    """The energy section as guard.energy writes it (camelCase, CO2e as in the policy input)."""

    def tenant(
        name: str, ns: str, kwh: float, kg: float, budget: float, forecast: float
    ) -> dict[str, object]:
        return {
            "tenant": name,
            "namespaces": [ns],
            "kwh": kwh,
            "kwhByMethod": {"measured": kwh * 0.75, "estimated": kwh * 0.25},
            "operationalKgCO2e": kg,
            "embodiedKgCO2e": None,
            "budget": {
                "period": "monthly",
                "periodStart": "2026-11-01T00:00:00Z",
                "periodEnd": "2026-12-01T00:00:00Z",
                "asOf": "2026-11-30T06:00:00Z",
                "budgetKgCO2e": budget,
                "usedKgCO2e": kg,
                "remainingKgCO2e": budget - kg,
                "forecastKgCO2e": forecast,
                "budgetKwh": None,
                "usedKwh": kwh,
                "remainingKwh": None,
                "forecastKwh": kwh,
            },
        }

    return {
        "since": "2026-11-01T00:00:00Z",
        "until": "2026-11-30T06:00:00Z",
        "windowSeconds": 2527200.0,
        "source": {
            "kind": "prometheus",
            "url": "http://prometheus.monitoring:9090",
            "schemaDetected": ["dcgm"],
            "queries": 4,
        },
        "intensityTable": "Ember yearly 2025",
        "workloads": [],
        "unallocated": {"kwh": 1.0, "source": "dcgm", "devices": []},
        "findings": [
            {
                "rule": "carbon_budget_forecast_exceeded",
                "severity": "high",
                "category": "budget",
                "message": "team-b forecasts 98.0 kg CO2e against a budget of 80.0",
                "tenant": "team-b",
            },
        ],
        "tenants": [
            tenant("team-a", "team-a", 120.0, 30.0, 50.0, 31.0),
            tenant("team-b", "team-b", 400.0, 95.0, 80.0, 98.0),
        ],
        "totalKwh": 521.0,
        "totalOperationalKgCO2e": 125.0,
    }


def make_result(
    *, scan_id: str = "scan-2", resolved_issue: bool = True, with_energy: bool = True, with_drift: bool = True
) -> ScanResult:
    wa = _workload(
        "team-a",
        "llm-server",
        "team-a",
        {"supply_chain.signature": "pass", "carbon.budget": "pass", "provenance.datasets": "pass"},
    )
    wb = _workload(
        "team-b",
        "trainer",
        "team-b",
        {"supply_chain.signature": "fail", "carbon.budget": "fail", "provenance.datasets": "error"},
    )
    wh = _workload(
        "team-b",
        HOSTILE.replace("*", "x")[:40],
        "team-b",
        {"supply_chain.signature": "fail", "carbon.budget": "pass"},
    )
    wp = _workload("default", "web", None, {"supply_chain.signature": "pass"}, ai=False, replicas=3)
    workloads = (wa, wb, wh, wp)
    findings = [
        _finding(
            wb,
            rule="unsigned_model",
            policy="supply_chain.signature",
            severity="critical",
            controls=POLICIES[0].controls,
            message="model registry.example.com/team-b/model:v1 is not signed",
        ),
        _finding(
            wb,
            rule="carbon_budget_exceeded",
            policy="carbon.budget",
            severity="medium",
            controls=POLICIES[1].controls,
        ),
        _finding(
            wh,
            rule="unsigned_model",
            policy="supply_chain.signature",
            severity="high",
            controls=POLICIES[0].controls,
            message=HOSTILE,
        ),
        _finding(
            wb,
            rule="digest_drift",
            policy=None,
            severity="high",
            category="drift",
            controls=("NIST-AI-RMF MANAGE-3.2", "OWASP-LLM-2025 LLM03"),
            evidence=Evidence(
                reference="registry.example.com/team-b/model:v1",
                digest="sha256:" + "a" * 64,
                running_digest="sha256:" + "c" * 64,
            ),
        ),
        _finding(
            wp,
            rule="mutable_tag",
            policy=None,
            severity="low",
            category="verification",
            controls=("SLSA-v1.0 Build-L2",),
            first_seen=T0 - timedelta(days=30),
        ),
        _finding(wp, rule="info_note", policy=None, severity="info", category="scan", controls=()),
    ]
    if not with_drift:  # the drift is new in the later run
        findings = [f for f in findings if f.rule != "digest_drift"]
    if not resolved_issue:  # the previous run had one more finding, resolved since
        findings.append(
            _finding(
                wa,
                rule="unsigned_model",
                policy="supply_chain.signature",
                severity="critical",
                controls=POLICIES[0].controls,
            )
        )
    info = ScanInfo(
        id=scan_id,
        started=T0,
        finished=T0 + timedelta(seconds=42),
        guard_version="0.1.0",
        config_hash="sha256:" + "1" * 64,
        policy_library_digest="sha256:" + "2" * 64,
        sources=(
            Source(
                type="cluster",
                name="prod-eu",
                server="https://10.0.0.1:6443",
                listed=(
                    KindListing(api_version="apps/v1", kind="Deployment", objects=4, list_calls=1),
                    KindListing(api_version="v1", kind="Pod", objects=9, list_calls=1),
                ),
            ),
        ),
        not_assessed=(
            NotAssessed(
                api_version="ray.io/v1",
                kind="RayCluster",
                reason="forbidden",
                message="list rayclusters.ray.io is forbidden",
                missing_rule=RbacRule(api_groups=("ray.io",), resources=("rayclusters",)),
            ),
        ),
        partial=True,
        partial_reasons=("RayCluster not assessed: forbidden",),
    )
    fs = tuple(findings)
    return ScanResult(
        scan=info,
        policies=POLICIES,
        workloads=workloads,
        findings=fs,
        summary=_summary(workloads, fs),
        energy=energy_section() if with_energy else None,
    )


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture
def result() -> ScanResult:
    return make_result()


@pytest.fixture
def previous() -> ScanResult:
    return make_result(scan_id="scan-1", resolved_issue=False, with_drift=False)


@pytest.fixture
def result_file(tmp_path: Path, result: ScanResult) -> Path:
    path = tmp_path / "result.json"
    path.write_text(result.to_json())
    return path


@pytest.fixture
def previous_file(tmp_path: Path, previous: ScanResult) -> Path:
    path = tmp_path / "previous.json"
    path.write_text(previous.to_json())
    return path
