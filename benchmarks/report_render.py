# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""Rendering time and size of every `guard report` format for a large scan result.

A result of --workloads workloads (default 1,000) across --tenants tenants with --findings
findings (default 10,000) is generated in memory. The baseline, measured in the same run, is
parsing the result document from JSON and writing it back (the least any report must do); each
figure is a ratio to it, plus bytes written. pdf runs only when Chromium is installed (--pdf).
Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar


def make_result(workloads: int, tenants: int, findings: int) -> Any:
    from guard.scan.result import (
        SEVERITY_ORDER,
        Evidence,
        Finding,
        PolicyEvaluation,
        PolicyInfo,
        ResourceRef,
        ScanInfo,
        ScanResult,
        Source,
        Summary,
        Workload,
        fingerprint,
    )

    now = datetime(2026, 11, 30, tzinfo=UTC)
    policies = (
        PolicyInfo(
            name="supply_chain.signature",
            enforcement="deny",
            controls=("NIST-AI-RMF MANAGE-3.2", "EU-AI-Act Art.15", "CIS-K8s 5.5.1"),
        ),
        PolicyInfo(
            name="provenance.datasets", enforcement="warn", controls=("EU-AI-Act Art.10", "ISO-42001 A.7.5")
        ),
    )
    ws = []
    for i in range(workloads):
        ns = f"team-{i % tenants}"
        ws.append(
            Workload(
                id=f"apps/v1/Deployment/{ns}/app-{i}",
                api_version="apps/v1",
                kind="Deployment",
                namespace=ns,
                name=f"app-{i}",
                tenant=ns,
                replicas=10,
                ai=True,
                evaluations=(
                    PolicyEvaluation(policy="supply_chain.signature", result="fail" if i % 3 else "pass"),
                    PolicyEvaluation(policy="provenance.datasets", result="pass"),
                ),
            )
        )
    fs = []
    for j in range(findings):
        w = ws[j % workloads]
        fs.append(
            Finding(
                workload_id=w.id,
                fingerprint=fingerprint(w.id, str(j)),
                category="policy",
                resource=ResourceRef(
                    api_version="apps/v1",
                    kind="Deployment",
                    namespace=w.namespace,
                    name=w.name,
                    replicas=w.replicas,
                ),
                tenant=w.tenant,
                container=f"c{j}",
                artifact=f"registry.example.com/{w.namespace}/m:{j}",
                rule="unsigned_model",
                policy="supply_chain.signature",
                severity=SEVERITY_ORDER[j % 5],
                message=f"model registry.example.com/{w.namespace}/m:{j} is not signed",
                remediation="sign it",
                evidence=Evidence(digest="sha256:" + f"{j:064x}"),
                controls=policies[0].controls,
                first_seen=now,
            )
        )
    info = ScanInfo(
        id="bench",
        started=now,
        finished=now,
        guard_version="0",
        config_hash="sha256:0",
        policy_library_digest=None,
        sources=(Source(type="cluster", name="bench"),),
        partial=False,
    )
    summary = Summary(
        workloads=workloads,
        ai_workloads=workloads,
        pods=10 * workloads,
        artifacts=findings,
        findings=findings,
        by_severity={},
        by_policy={},
        by_tenant={},
        by_namespace={},
        by_category={},
        by_status={},
    )
    return ScanResult(scan=info, policies=policies, workloads=tuple(ws), findings=tuple(fs), summary=summary)


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--pdf", action="store_true", help="Also print the PDF (needs chromium).")
    args = parser.parse_args()

    from guard.errors import GuardError
    from guard.report.build import build_report
    from guard.report.catalogue import load_catalogue
    from guard.report.formats import FORMATS, renderer
    from guard.scan.result import ScanResult

    result = make_result(args.workloads, args.tenants, args.findings)
    text = result.to_json()
    base, _ = timed(lambda: ScanResult.model_validate_json(text).to_json())
    print(
        f"result: {args.workloads} workloads, {args.tenants} tenants, {args.findings} findings, "
        f"{len(text) / 1e6:.1f} MB JSON"
    )
    print(f"baseline (parse + write the result): {base:.3f} s")
    catalogue = load_catalogue()
    t, report = timed(lambda: build_report(result, catalogue, generated=datetime.now(UTC)))
    print(f"{'model':8} {t / base:7.2f} x baseline")
    for name in FORMATS:
        if name == "pdf" and not args.pdf:
            continue
        try:
            t, data = timed(partial(renderer(name).render, report))
        except GuardError as err:
            print(f"{name:8} failed: {err}")
            continue
        print(f"{name:8} {t / base:7.2f} x baseline  {len(data) / 1e6:8.2f} MB")


if __name__ == "__main__":
    main()
