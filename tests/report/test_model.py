"""The report model: compliance per control (passed / assessed), scopes, deltas, energy."""

from __future__ import annotations

import json

import jsonschema
import pytest

from guard.errors import UsageError
from guard.report.build import build_report
from guard.report.catalogue import Catalogue
from guard.report.model import Report, ScopeFilter, report_schema
from guard.scan.result import ScanResult
from tests.report.conftest import T0, make_result


def _report(result: ScanResult, catalogue: Catalogue, **kw: object) -> Report:
    return build_report(result, catalogue, generated=T0, **kw)  # type: ignore[arg-type]


def test_compliance_per_control_is_passed_over_assessed(result: ScanResult, catalogue: Catalogue) -> None:
    report = _report(result, catalogue)
    rows = {r.id: r for r in report.coverage}
    # supply_chain.signature evaluated on 4 workloads: 2 pass, 2 fail; the drift finding is on a failed one
    sig = rows["EU-AI-Act Art.15"]
    assert (sig.assessed, sig.passed, sig.failed, sig.status) == (4, 2, 2, "fail")
    assert sig.compliance == pytest.approx(0.5)
    assert sig.rules == ("supply_chain.signature",)
    # the drift finding (no policy) cites LLM03: one workload assessed, failed; rule guard's own check
    llm03 = rows["OWASP-LLM-2025 LLM03"]
    assert (llm03.assessed, llm03.failed, llm03.rules) == (1, 1, ("digest_drift",))
    # provenance.datasets: one pass, one error -> assessed 2, passed 1, errors 1
    data = rows["ISO-42001 A.7.5"]
    assert (data.assessed, data.passed, data.errors, data.compliance) == (2, 1, 1, 0.5)
    # the mutable-tag finding is on a workload no policy for that control evaluated
    assert rows["SLSA-v1.0 Build-L2"].failed == 1
    # a catalogue control no rule maps to is said plainly to be not assessed by guard
    human = rows["EU-AI-Act Art.14"]
    assert human.status == "not-assessed" and human.compliance is None
    assert human.note is not None and "not assessed by guard" in human.note
    assert len(report.coverage) >= len(catalogue.controls)


def test_summaries_per_scope(result: ScanResult, catalogue: Catalogue) -> None:
    report = _report(result, catalogue)
    kinds = [(s.kind, s.name) for s in report.summaries]
    assert kinds[0] == ("cluster", "prod-eu")
    assert ("tenant", "team-a") in kinds and ("tenant", "team-b") in kinds
    assert ("namespace", "default") in kinds
    overall = report.overall
    assert overall.findings_by_severity == result.summary.by_severity
    assert overall.workloads == result.summary.workloads and overall.pods == result.summary.pods
    team_a = next(s for s in report.summaries if s.name == "team-a" and s.kind == "tenant")
    assert team_a.compliance == 1.0 and team_a.controls_failed == 0
    assert team_a.energy is not None and team_a.energy.budget_kg_co2e == 50.0
    team_b = next(s for s in report.summaries if s.name == "team-b" and s.kind == "tenant")
    assert team_b.energy is not None and team_b.energy.over_budget
    assert overall.energy is not None and overall.energy.kwh == pytest.approx(520.0)
    assert report.appendix.prometheus_url == "http://prometheus.monitoring:9090"
    assert report.appendix.intensity_dataset == "Ember yearly 2025"
    assert report.appendix.not_assessed[0].startswith("RayCluster (ray.io/v1): forbidden")


def test_findings_most_severe_first(result: ScanResult, catalogue: Catalogue) -> None:
    severities = [f.severity for f in _report(result, catalogue).findings]
    assert severities == ["critical", "high", "high", "medium", "low", "info"]


def test_deltas_by_fingerprint(result: ScanResult, previous: ScanResult, catalogue: Catalogue) -> None:
    report = _report(result, catalogue, previous=previous)
    assert report.deltas is not None
    drift = next(f for f in report.findings if f.rule == "digest_drift")
    assert report.deltas.new == (drift.fingerprint,) and drift.delta == "new"
    assert len(report.deltas.persisting) == len(result.findings) - 1
    assert [r.name for r in report.deltas.resolved] == ["llm-server"]
    assert report.deltas.previous_scan == "scan-1"


def test_scope_tenant(result: ScanResult, catalogue: Catalogue) -> None:
    report = _report(result, catalogue, scope=ScopeFilter.parse("tenant=team-a"))
    assert report.overall.kind == "tenant" and report.overall.name == "team-a"
    assert report.findings == ()
    assert {s.kind for s in report.summaries} == {"tenant", "namespace"}
    assert report.overall.energy is not None and report.overall.energy.tenant == "team-a"


@pytest.mark.parametrize("text", ["tenant", "team=x", "tenant=", "=x"])
def test_scope_parse_errors(text: str) -> None:
    with pytest.raises(UsageError, match="expected tenant=NAME or namespace=NAME"):
        ScopeFilter.parse(text)


def test_energy_section_of_another_shape_is_said_not_read(catalogue: Catalogue) -> None:
    bad = make_result().model_copy(update={"energy": {"tenants": [{"tenant": "x"}]}})
    report = _report(bad, catalogue)
    assert report.overall.energy is None
    assert report.appendix.energy_note is not None and "energy.tenants.0.kwh" in report.appendix.energy_note


def test_no_energy(catalogue: Catalogue) -> None:
    report = _report(make_result(with_energy=False), catalogue)
    assert report.overall.energy is None and report.appendix.energy_note is None


def test_report_json_validates_against_its_schema(result: ScanResult, catalogue: Catalogue) -> None:
    doc = json.loads(_report(result, catalogue).to_json())
    jsonschema.Draft202012Validator(report_schema()).validate(doc)
    assert Report.model_validate(doc) == _report(result, catalogue)


def test_a_failed_policy_fails_only_the_controls_its_findings_cite(
    result: ScanResult, catalogue: Catalogue
) -> None:
    findings = tuple(
        f.model_copy(update={"controls": ("NIST-AI-RMF MEASURE-2.12",)})
        if f.rule == "carbon_budget_exceeded"
        else f
        for f in result.findings
    )
    rows = {r.id: r for r in _report(result.model_copy(update={"findings": findings}), catalogue).coverage}
    assert (rows["NIST-AI-RMF MEASURE-2.12"].failed, rows["NIST-AI-RMF MEASURE-2.12"].assessed) == (1, 3)
    assert rows["ISO-42001 A.5.5"].status == "pass" and rows["ISO-42001 A.5.5"].assessed == 3


def test_energy_findings_are_carried(result: ScanResult, catalogue: Catalogue) -> None:
    report = _report(result, catalogue)
    assert [(f.rule, f.tenant) for f in report.energy_findings] == [
        ("carbon_budget_forecast_exceeded", "team-b")
    ]
    assert _report(result, catalogue, scope=ScopeFilter.parse("tenant=team-a")).energy_findings == ()
