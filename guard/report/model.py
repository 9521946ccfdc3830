"""The report model: what every renderer (html, md, csv, json, sarif, junit, oscal) shows.

A ``Report`` (built by ``guard.report.build.build_report`` from a scan result) holds a summary per
scope (cluster, each tenant, each namespace) with compliance per control (Kubescape's formula:
passed resources / assessed resources, see ``guard.report.coverage``), open findings by severity,
energy and CO2e against the budget when the scan had them; the control coverage matrix over the
shipped catalogue; the findings, most severe first; deltas against a previous result by the
scan's stable fingerprints; and the evidence appendix. ``--format json`` writes it as is, with
the JSON Schema of ``report_schema()``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from guard.scan.result import Severity

REPORT_API_VERSION: Final = "guard.cnai.dev/report/v1"
ScopeKind = Literal["cluster", "tenant", "namespace"]
ControlStatus = Literal["pass", "fail", "not-assessed"]
DeltaState = Literal["new", "persisting"]


class _Model(BaseModel):
    """camelCase on the wire, as the scan result document (``apiVersion``, ``findingsBySeverity``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


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


class EnergyFindingRow(_Model):
    """A finding of the energy scan (budget, efficiency, data): about a tenant or pod, not a workload."""

    rule: str
    severity: str
    category: str
    message: str
    tenant: str | None = None
    namespace: str | None = None
    pod: str | None = None


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
    energy_findings: tuple[EnergyFindingRow, ...] = Field(
        default=(), description="The energy scan's findings (budgets, efficiency, data), most severe first."
    )
    deltas: Deltas | None
    appendix: Appendix

    @property
    def overall(self) -> ScopeSummary:
        return self.summaries[0]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, by_alias=True) + "\n"


def report_schema() -> dict[str, Any]:
    schema = Report.model_json_schema(mode="serialization", by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://guard.cnai.dev/schemas/report/v1.json"
    return schema
