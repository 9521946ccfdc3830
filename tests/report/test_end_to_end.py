"""`guard scan` on a snapshot, then `guard report` on its real result document."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from guard.cli import run
from guard.report.model import Report
from guard.scan.result import ScanResult

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scan") / "result.json"
    code = run(
        [
            "scan",
            "--config",
            str(DATA / "report" / "config.yaml"),
            "--snapshot",
            str(DATA / "report" / "snapshot.json"),
            "-o",
            str(out),
            "--allow-partial",
        ]
    )
    assert code in (0, 1), code  # 1: findings at or above --fail-on
    return out


def test_report_of_a_real_scan(scanned: Path, tmp_path: Path) -> None:
    result = ScanResult.model_validate_json(scanned.read_text())
    assert result.findings, "the snapshot's unsigned model must give findings"
    assert run(["report", str(scanned), "-f", "json", "-o", str(tmp_path / "r.json")]) == 0
    report = Report.model_validate_json((tmp_path / "r.json").read_text())
    assert report.overall.findings_by_severity == result.summary.by_severity
    assert len(report.findings) == result.summary.findings
    assert report.overall.workloads == result.summary.workloads
    rows = {c.id: c for c in report.coverage}
    for f in result.findings:  # every control a finding cites is failed in the coverage matrix
        for control in f.controls:
            assert rows[control].status == "fail", control
    # a policy citing a control in one violation only still assesses every workload it ran on
    cited = {c for f in result.findings for c in f.controls}
    errored = {e.policy for w in result.workloads for e in w.evaluations if e.result == "error"}
    for row in report.coverage:  # and a control fails only for a finding citing it, or an evaluation error
        if row.status == "fail" and row.id not in cited:
            assert row.errors and set(row.rules) & errored, row
    assert rows["CIS-K8s 5.2.2"].status == "pass"  # tenancy.isolation failed on privilege escalation only
    evaluated = [w for w in result.workloads if any(e.policy == "tenancy.isolation" for e in w.evaluations)]
    assert evaluated and rows["PSS-Restricted"].assessed == len(evaluated)
    assert run(["report", str(scanned), "-f", "sarif", "-o", str(tmp_path / "r.sarif")]) == 0
    schema = json.loads((DATA / "sarif" / "sarif-2.1.0-rtm.5.json").read_text())
    jsonschema.Draft4Validator(schema).validate(json.loads((tmp_path / "r.sarif").read_text()))
