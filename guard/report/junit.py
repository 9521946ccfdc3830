"""``--format junit``: one testcase per control x scope, for CI gates.

A test suite per scope (``cluster prod``, ``tenant team-a``, ``namespace ml``); in each, a
testcase per control assessed there: passed, or failed with the failing workloads' findings.
In the report's own scope, the catalogue controls guard does not assess are skipped testcases
that say so. The XML is written by ``junitparser`` (it escapes the text; names in a cluster are
user-controlled, and characters XML 1.0 cannot carry are replaced first).
"""

from __future__ import annotations

import re

from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

from guard.report.model import ControlRow, FindingRow, Report, ScopeSummary

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_DETAIL_LINES = 50


def xml_text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _in(scope: ScopeSummary, f: FindingRow) -> bool:
    if scope.kind == "tenant":
        return f.tenant == scope.name
    if scope.kind == "namespace":
        return f.namespace == scope.name
    return True


def _case(scope: ScopeSummary, control: ControlRow, findings: list[FindingRow]) -> TestCase:
    case = TestCase(
        name=xml_text(f"{control.id}: {control.title}"), classname=xml_text(f"{scope.kind}.{scope.name}")
    )
    if control.status == "fail":
        lines = [f"{f.severity} {f.kind} {f.namespace}/{f.name}: {f.message}" for f in findings]
        if len(lines) > MAX_DETAIL_LINES:
            lines = [*lines[:MAX_DETAIL_LINES], f"... and {len(lines) - MAX_DETAIL_LINES} more"]
        failure = Failure(
            message=xml_text(
                f"{control.failed + control.errors} of {control.assessed} workloads do not pass "
                f"(compliance {control.passed}/{control.assessed})"
            ),
            type_="ControlNotSatisfied",
        )
        failure.text = xml_text(
            "\n".join(lines) or "policy evaluations failed or were in error; see the report"
        )
        case.result = [failure]
    elif control.status == "not-assessed":
        case.result = [Skipped(message=xml_text(control.note or "not assessed by guard"))]
    return case


class JunitRenderer:
    name = "junit"
    extension = "xml"
    media_type = "application/xml"

    def render(self, report: Report) -> bytes:
        xml = JUnitXml(name=xml_text(report.title))
        for i, scope in enumerate(report.summaries):
            suite = TestSuite(xml_text(f"{scope.kind} {scope.name}"))
            rows = list(scope.controls)
            if i == 0:
                assessed = {c.id for c in rows}
                rows += [c for c in report.coverage if c.id not in assessed and c.status == "not-assessed"]
            for control in rows:
                related = [f for f in report.findings if control.id in f.controls and _in(scope, f)]
                suite.add_testcase(_case(scope, control, related))
            suite.update_statistics()  # type: ignore[no-untyped-call]
            xml.add_testsuite(suite)
        xml.update_statistics()  # type: ignore[no-untyped-call]
        return xml.tostring()  # type: ignore[no-untyped-call,no-any-return]
