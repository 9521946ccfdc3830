"""In-cluster reports: one ``openreports.io/v1alpha1`` Report (default) or ``wgpolicyk8s.io/v1alpha2``
PolicyReport per namespace per run, never one per resource (the peers that did filled etcd).

Each report is written by server-side apply under one name (``guard-scan``), so a run replaces
the previous run's report, and is labelled with the run id. It is byte-capped well under etcd's
1.5 MiB (768 KiB by default): fail / warn / error results in full, most severe first, up to the
cap; pass aggregated per policy as counts; ``summary`` always complete over every result; the cap
and whether it cut anything stated in the report (``configuration.limits`` for openreports, and
annotations on both).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from guard.errors import InfrastructureError
from guard.scan.result import SEVERITY_ORDER, Finding, ScanResult

if TYPE_CHECKING:
    from guard.scan.sources.live import KubeApi

Flavor = Literal["openreports", "policyreport"]
REPORT_NAME = "guard-scan"
DEFAULT_BYTE_CAP = 768 * 1024
_GROUPS = {
    "openreports": ("openreports.io", "v1alpha1", "Report", "reports"),
    "policyreport": ("wgpolicyk8s.io", "v1alpha2", "PolicyReport", "policyreports"),
}


def _status(finding: Finding) -> str:
    if finding.rule == "unverifiable":
        return "error"
    return "fail" if finding.enforcement in (None, "deny") else "warn"


def _result(finding: Finding, timestamp: dict[str, int]) -> dict[str, Any]:
    r = finding.resource
    resource = {"apiVersion": r.api_version, "kind": r.kind, "namespace": r.namespace, "name": r.name}
    properties = {"fingerprint": finding.fingerprint, "category": finding.category}
    if finding.controls:
        properties["controls"] = ", ".join(finding.controls)
    if finding.artifact:
        properties["artifact"] = finding.artifact
    if finding.container:
        properties["container"] = finding.container
    return {
        "source": "guard",
        "policy": finding.policy or "guard",
        "rule": finding.rule,
        "category": finding.category,
        "severity": finding.severity,
        "result": _status(finding),
        "scored": True,
        "timestamp": timestamp,
        "resources": [resource],
        "message": finding.message,
        "properties": properties,
    }


def build_reports(
    result: ScanResult, flavor: Flavor = "openreports", byte_cap: int = DEFAULT_BYTE_CAP
) -> list[dict[str, Any]]:
    """One report object per namespace of the result's workloads."""
    group, version, kind, _ = _GROUPS[flavor]
    ts = {"seconds": int(result.scan.finished.timestamp()), "nanos": 0}
    findings: dict[str, list[Finding]] = defaultdict(list)
    for f in result.findings:
        findings[f.resource.namespace].append(f)
    passes: dict[str, Counter[str]] = defaultdict(Counter)
    namespaces: set[str] = set()
    for w in result.workloads:
        namespaces.add(w.namespace)
        for e in w.evaluations:
            if e.result == "pass":
                passes[w.namespace][e.policy] += 1
    reports = []
    for namespace in sorted(namespaces):
        ordered = sorted(findings[namespace], key=lambda f: (SEVERITY_ORDER.index(f.severity), f.fingerprint))
        results = [_result(f, ts) for f in ordered]
        summary = Counter(r["result"] for r in results)
        pass_rows = [
            {
                "source": "guard",
                "policy": policy,
                "result": "pass",
                "scored": True,
                "timestamp": ts,
                "message": f"{count} workload(s) in {namespace} pass {policy}",
                "properties": {"workloads": str(count)},
            }
            for policy, count in sorted(passes[namespace].items())
        ]
        summary["pass"] = sum(passes[namespace].values())
        report: dict[str, Any] = {
            "apiVersion": f"{group}/{version}",
            "kind": kind,
            "metadata": {
                "name": REPORT_NAME,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "guard", "guard.cnai.dev/scan-id": result.scan.id},
                "annotations": {"guard.cnai.dev/byte-cap": str(byte_cap)},
            },
            "summary": {k: summary.get(k, 0) for k in ("pass", "fail", "warn", "error", "skip")},
            "results": [],
        }
        if flavor == "openreports":
            report["source"] = "guard"
            report["configuration"] = {"limits": {"maxResults": 0, "statusFilter": ["fail", "warn", "error"]}}
        size = len(json.dumps(report)) + sum(len(json.dumps(p)) + 1 for p in pass_rows) + 512
        kept = []
        for row in results:
            length = len(json.dumps(row)) + 1
            if size + length > byte_cap:
                break
            kept.append(row)
            size += length
        report["results"] = kept + pass_rows
        cut = len(results) - len(kept)
        report["metadata"]["annotations"]["guard.cnai.dev/truncated"] = str(cut > 0).lower()
        if cut:
            report["metadata"]["annotations"]["guard.cnai.dev/omitted-results"] = str(cut)
        if flavor == "openreports":
            report["configuration"]["limits"]["maxResults"] = len(kept)
        reports.append(report)
    return reports


def report_path(report: Mapping[str, Any], flavor: Flavor) -> str:
    group, version, _, resource = _GROUPS[flavor]
    return f"/apis/{group}/{version}/namespaces/{report['metadata']['namespace']}/{resource}/{REPORT_NAME}"


def write_reports(api: KubeApi, result: ScanResult, flavor: Flavor) -> int:
    """Server-side apply each namespace's report; returns how many were written."""
    from guard.scan.sources.live import ApiError  # noqa: PLC0415

    reports = build_reports(result, flavor)
    for report in reports:
        path = report_path(report, flavor)
        try:
            api.apply(path, report)
        except ApiError as err:
            hint = {
                403: f"grant the scanner patch on {_GROUPS[flavor][3]}.{_GROUPS[flavor][0]}",
                404: f"install the {_GROUPS[flavor][2]} CRD ({_GROUPS[flavor][0]})",
            }.get(err.status, "check the API server")
            raise InfrastructureError(
                f"writing the {flavor} report {path} failed: HTTP {err.status} {err.message}; {hint}"
            ) from err
    return len(reports)
