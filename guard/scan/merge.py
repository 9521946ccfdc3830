"""``guard scan merge``: join the results of ``--shard I/N`` runs into one result.

Shards split namespaces (tenants stay whole), so workloads and findings never overlap; the
merge still de-duplicates them by id and fingerprint. Shards must come from the same config and
policy library, and every shard 0..N-1 must be there: a missing one makes the result partial.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from guard.errors import UsageError
from guard.scan.findings import summarize
from guard.scan.result import Finding, PolicyInfo, ScanInfo, ScanResult, Workload
from guard.textfile import read_user_text


def load_result(path: Path) -> ScanResult:
    text = read_user_text(path, what="scan result", expected="a guard scan result (JSON)")
    try:
        return ScanResult.model_validate_json(text)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in err.errors()[:3]
        )
        raise UsageError(
            f"{path}: expected a guard scan result (apiVersion guard.cnai.dev/scan-result/v1), "
            f"found: {problems}"
        ) from err


def merge_results(results: Sequence[ScanResult]) -> ScanResult:
    if not results:
        raise UsageError("expected at least one scan result to merge")
    first = results[0]
    for result in results[1:]:
        if result.scan.config_hash != first.scan.config_hash:
            raise UsageError(
                f"scan {result.scan.id} ran with config {result.scan.config_hash}, scan {first.scan.id} with "
                f"{first.scan.config_hash}: shards of one audit must use the same config"
            )
        if result.scan.policy_library_digest != first.scan.policy_library_digest:
            raise UsageError(
                f"scan {result.scan.id} ran with another policy library than scan {first.scan.id}: shards of "
                f"one audit must use the same library"
            )
    reasons: list[str] = [r for result in results for r in result.scan.partial_reasons]
    shards = [r.scan.shard for r in results if r.scan.shard is not None]
    if shards:
        counts = {s.count for s in shards}
        if len(counts) != 1 or len(shards) != len(results):
            raise UsageError(
                "expected the results of one sharded audit (all with --shard I/N and the same N), "
                f"found shard counts {sorted(counts)} over {len(results)} results"
            )
        count = counts.pop()
        seen = [s.index for s in shards]
        duplicated = sorted({i for i in seen if seen.count(i) > 1})
        if duplicated:
            raise UsageError(f"shard(s) {duplicated} of {count} given more than once")
        missing = sorted(set(range(count)) - set(seen))
        if missing:
            reasons.append(f"shard(s) {missing} of {count} are missing: their namespaces were not audited")
    workloads: dict[str, Workload] = {}
    findings: dict[str, Finding] = {}
    policies: dict[str, PolicyInfo] = {}
    for result in results:
        for w in result.workloads:
            workloads.setdefault(w.id, w)
        for f in result.findings:
            findings.setdefault(f.fingerprint, f)
        for p in result.policies:
            policies.setdefault(p.name, p)
    info = ScanInfo(
        id=uuid.uuid4().hex,
        started=min(r.scan.started for r in results),
        finished=max(r.scan.finished for r in results),
        guard_version=first.scan.guard_version,
        config_hash=first.scan.config_hash,
        policy_library_digest=first.scan.policy_library_digest,
        sources=tuple(s for r in results for s in r.scan.sources),
        namespaces=first.scan.namespaces,
        merged_from=tuple(r.scan.id for r in results),
        not_assessed=tuple(dict.fromkeys(n for r in results for n in r.scan.not_assessed)),
        partial=bool(reasons) or any(r.scan.partial for r in results),
        partial_reasons=tuple(dict.fromkeys(reasons)),
        list_restarts=sum(r.scan.list_restarts for r in results),
        previous_scan=first.scan.previous_scan,
    )
    ordered_workloads = sorted(workloads.values(), key=lambda w: w.id)
    ordered_findings = sorted(
        findings.values(), key=lambda f: (f.workload_id, f.category, f.policy or "", f.rule)
    )
    return ScanResult(
        scan=info,
        policies=tuple(sorted(policies.values(), key=lambda p: p.name)),
        workloads=tuple(ordered_workloads),
        findings=tuple(ordered_findings),
        summary=summarize(ordered_workloads, ordered_findings, sum(r.summary.pods for r in results)),
    )
