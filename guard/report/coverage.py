"""Per control and workload: assessed, passed, failed (the coverage matrix and each scope's rows).

A workload is *assessed* for a control when a policy mapped to the control was evaluated on it,
or a finding on it cites the control; it *fails* when such a finding exists, or when such a policy
failed there and none of its findings on the workload are in the document; an evaluation in error
counts as assessed and not passed (an audit that could not decide does not pass).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from guard.report.catalogue import Catalogue
from guard.report.model import ControlRow
from guard.scan.result import Finding, ScanResult, Workload


def policy_controls(result: ScanResult) -> dict[str, tuple[str, ...]]:
    """Each policy's controls: the run's policy catalog, plus what its findings cite (a policy may
    cite a control in one violation only, e.g. PSS-Restricted for privilege escalation): a policy
    evaluated on a workload assessed it for every control the policy can cite."""
    out = {p.name: list(p.controls) for p in result.policies}
    for f in result.findings:
        if f.policy is not None:
            known = out.setdefault(f.policy, [])
            known += [c for c in f.controls if c not in known]
    return {name: tuple(controls) for name, controls in out.items()}


def control_rows(
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
