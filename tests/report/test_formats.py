"""Each format checked by a reader of that format: SARIF against the official schema, JUnit by an
XML parser, OSCAL by compliance-trestle, CSV read back, Markdown and CSV injection neutralised."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from html import escape as html_escape
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest

from guard.report.build import build_report
from guard.report.catalogue import Catalogue
from guard.report.csvfile import COLUMNS, CsvRenderer
from guard.report.formats import FORMATS, renderer
from guard.report.jsonfile import JsonRenderer
from guard.report.junit import JunitRenderer
from guard.report.md import MarkdownRenderer, esc
from guard.report.model import Report
from guard.report.oscal import OscalRenderer, control_token
from guard.report.sarif import SarifRenderer, location_uri
from guard.scan.result import ScanResult
from tests.report.conftest import HOSTILE, T0

SARIF_SCHEMA = Path(__file__).parents[1] / "data" / "sarif" / "sarif-2.1.0-rtm.5.json"


@pytest.fixture
def report(result: ScanResult, previous: ScanResult, catalogue: Catalogue) -> Report:
    return build_report(result, catalogue, generated=T0, previous=previous)


def test_sarif_is_valid_against_the_official_schema(report: Report) -> None:
    doc = json.loads(SarifRenderer().render(report))
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
    run = doc["runs"][0]
    assert len(run["results"]) == len(report.findings)
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for res in run["results"]:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("k8s://prod-eu/")
        assert res["partialFingerprints"]["guard/v1"].startswith("sha256:")
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["supply_chain.signature/unsigned_model"]["properties"]["security-severity"] == "9.5"
    assert rules["guard/digest_drift"]["properties"]["security-severity"] == "8.0"
    assert run["properties"]["truncated"] is False


def test_sarif_is_stable_across_runs(report: Report, result: ScanResult, catalogue: Catalogue) -> None:
    again = build_report(result, catalogue, generated=T0.replace(year=2027))
    first = json.loads(SarifRenderer().render(report))["runs"][0]["results"]
    second = json.loads(SarifRenderer().render(again))["runs"][0]["results"]
    assert [(r["ruleId"], r["partialFingerprints"]) for r in first] == [
        (r["ruleId"], r["partialFingerprints"]) for r in second
    ]


def test_sarif_location_encodes_hostile_names(report: Report) -> None:
    hostile = next(f for f in report.findings if f.message == HOSTILE)
    uri = location_uri("prod eu", hostile)
    assert uri.startswith("k8s://prod%20eu/team-b/Deployment/") and "<" not in uri and '"' not in uri


def test_sarif_truncates_by_severity_and_says_so(report: Report) -> None:
    doc = json.loads(SarifRenderer(max_results=3).render(report))
    run = doc["runs"][0]
    assert [r["properties"]["severity"] for r in run["results"]] == ["critical", "high", "high"]
    assert run["properties"] == {**run["properties"], "truncated": True, "droppedResults": 3}
    note = run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    assert "3 of 6 results left out" in note and "least severe" in note


def test_sarif_truncates_to_the_gzip_limit(report: Report) -> None:
    full = SarifRenderer().render(report)
    limit = len(gzip.compress(full)) - 200
    data = SarifRenderer(max_gzip_bytes=limit).render(report)
    assert len(gzip.compress(data)) <= limit
    run = json.loads(data)["runs"][0]
    assert 0 < len(run["results"]) < len(report.findings) and run["properties"]["truncated"] is True


def test_junit_one_testcase_per_control_and_scope(report: Report) -> None:
    root = ElementTree.fromstring(JunitRenderer().render(report))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"{s.kind} {s.name}" for s in report.summaries]
    cluster = suites[0]
    cases = cluster.findall("testcase")
    assert len(cases) == len(report.coverage)  # assessed + not-assessed (skipped) controls
    failed = {c.get("name", "").split(":")[0] for c in cases if c.find("failure") is not None}
    assert failed == {c.id for c in report.overall.controls if c.status == "fail"}
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(skipped) == sum(1 for c in report.coverage if c.status == "not-assessed")
    assert int(cluster.get("failures", "0")) == len(failed)
    team_a = next(s for s in suites if s.get("name") == "tenant team-a")
    assert all(c.find("failure") is None for c in team_a.findall("testcase"))
    text = "".join(e.text or "" for e in root.iter("failure"))
    assert HOSTILE in text  # carried as text, escaped by the XML writer


def _state(finding: object) -> str:
    state = finding.target.status.state  # type: ignore[attr-defined]
    return str(getattr(state, "value", getattr(state, "root", state)))


def test_oscal_validates_with_trestle(report: Report) -> None:
    trestle_ar = pytest.importorskip("trestle.oscal.assessment_results")
    doc = json.loads(OscalRenderer().render(report))
    parsed = trestle_ar.AssessmentResults.model_validate(doc["assessment-results"])
    result = parsed.results[0]
    states = {
        str(getattr(f.target.target_id, "root", f.target.target_id)): _state(f) for f in result.findings
    }
    assert states[control_token("EU-AI-Act Art.15")] == "not-satisfied"
    assert states[control_token("SLSA-v1.0 Build-L2")] == "not-satisfied"
    assert len(states) == sum(1 for c in report.coverage if c.status != "not-assessed")
    assert len(result.observations) == len(report.findings) + len(result.findings)
    assert OscalRenderer().render(report) == OscalRenderer().render(report)  # reproducible ids


def test_oscal_satisfied_control(result: ScanResult, catalogue: Catalogue) -> None:
    from guard.report.model import ScopeFilter

    trestle_ar = pytest.importorskip("trestle.oscal.assessment_results")
    report = build_report(result, catalogue, generated=T0, scope=ScopeFilter.parse("tenant=team-a"))
    doc = json.loads(OscalRenderer().render(report))
    parsed = trestle_ar.AssessmentResults.model_validate(doc["assessment-results"])
    assert {_state(f) for f in parsed.results[0].findings} == {"satisfied"}


def test_csv_round_trips_and_neutralises_formulas(report: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(CsvRenderer().render(report).decode())))
    assert len(rows) == len(report.findings)
    assert list(rows[0]) == list(COLUMNS)
    for row, finding in zip(rows, report.findings, strict=True):
        assert row["fingerprint"] == finding.fingerprint
        assert row["severity"] == finding.severity
        assert row["controls"] == "; ".join(finding.controls)
    hostile = next(r for r in rows if "HYPERLINK" in r["message"])
    assert hostile["message"] == "'" + HOSTILE
    assert hostile["name"].startswith("'=")
    for row in rows:
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row.values())


def test_markdown_escapes_cluster_names(report: Report) -> None:
    text = MarkdownRenderer().render(report).decode()
    assert "<script>" not in text and "[l](u)" not in text
    assert esc(HOSTILE) in text
    assert esc("a|b") == "a\\|b" and esc("<b>") == "&lt;b&gt;" and esc("x\ny") == "x y"
    assert "## Failing controls" in text and "Changes since scan scan\\-1" not in text
    assert "New: 1, resolved: 1" in text
    assert "## Energy and carbon findings (1)" in text and "carbon\\_budget\\_forecast\\_exceeded" in text


def test_json_is_the_report_model(report: Report) -> None:
    assert Report.model_validate_json(JsonRenderer().render(report)) == report


def test_every_format_renders(report: Report) -> None:
    for name in FORMATS:
        if name == "pdf":
            continue  # needs Chromium: tests/report/test_browser.py
        assert renderer(name).render(report)


def test_html_lists_the_most_severe_findings_when_capped_and_says_so(report: Report) -> None:
    from guard.report.html import render_html

    page = render_html(report, max_findings=2)
    assert page.count('<tr class="finding"') == 2
    assert 'data-severity="critical"' in page
    assert "The 2 most severe of 6 findings are listed here" in page
    full = render_html(report)
    assert full.count('<tr class="finding"') == 6 and "findings-truncated" not in full


def test_control_characters_in_names_do_not_break_xml_or_json(
    result: ScanResult, catalogue: Catalogue
) -> None:
    findings = tuple(
        f.model_copy(update={"message": "bell\x07 nul\x00 esc\x1b end"}) for f in result.findings
    )
    report = build_report(result.model_copy(update={"findings": findings}), catalogue, generated=T0)
    root = ElementTree.fromstring(JunitRenderer().render(report))
    assert "bell\ufffd nul\ufffd esc\ufffd end" in "".join(e.text or "" for e in root.iter("failure"))
    sarif = json.loads(SarifRenderer().render(report))
    assert sarif["runs"][0]["results"][0]["message"]["text"] == "bell\x07 nul\x00 esc\x1b end"
    assert "bell\ufffd nul\ufffd esc\ufffd end" in MarkdownRenderer().render(report).decode()


def _markup_fields(node: object, key: str = "") -> list[str]:
    """Every OSCAL markup value (titles, descriptions, remarks: Markdown in OSCAL's JSON)."""
    if isinstance(node, dict):
        return [v for k, child in node.items() for v in _markup_fields(child, k)]
    if isinstance(node, list):
        return [v for child in node for v in _markup_fields(child, key)]
    return [node] if key in {"title", "description", "remarks"} and isinstance(node, str) else []


def test_oscal_markup_does_not_carry_links_or_html_from_the_cluster(
    result: ScanResult, catalogue: Catalogue
) -> None:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    hostile = "[approve the waiver](https://phish.example/) <img src=x onerror=alert(1)> &amp; `x`"
    findings = tuple(
        f.model_copy(update={"message": hostile, "remediation": hostile}) for f in result.findings
    )
    report = build_report(result.model_copy(update={"findings": findings}), catalogue, generated=T0)
    doc = json.loads(OscalRenderer().render(report))
    texts = _markup_fields(doc)
    assert any(hostile.split("]")[0].lstrip("[") in t for t in texts)  # the message is still there
    for text in texts:  # as a GRC tool renders OSCAL markup: CommonMark
        html = cmarkgfm.markdown_to_html(text, options=cmarkgfm.Options.CMARK_OPT_UNSAFE)
        assert "<a " not in html and "<img" not in html and "<code>" not in html, (text, html)
    observation = next(
        o for o in doc["assessment-results"]["results"][0]["observations"] if o["types"] == ["finding"]
    )
    shown = cmarkgfm.markdown_to_html(observation["description"], options=cmarkgfm.Options.CMARK_OPT_UNSAFE)
    assert shown.strip() == f"<p>{html_escape(hostile, quote=False)}</p>"  # the message, as text


def test_sarif_message_text_carries_no_embedded_link_from_the_cluster(
    result: ScanResult, catalogue: Catalogue
) -> None:
    """SARIF 2.1.0 3.11.6: a plain text message may embed links, ``[text](target)`` with a URI
    or a related location's id as the target, and viewers render them as links; brackets that
    are text are escaped with a backslash. A message from the cluster must stay text."""
    hostile = r"[approve the waiver](https://phish.example/) and [here](0) \[kept\]"
    findings = tuple(
        f.model_copy(update={"message": hostile, "remediation": hostile}) for f in result.findings
    )
    report = build_report(result.model_copy(update={"findings": findings}), catalogue, generated=T0)
    run = json.loads(SarifRenderer().render(report))["runs"][0]
    texts = [r["message"]["text"] for r in run["results"]] + [
        r["help"]["text"] for r in run["tool"]["driver"]["rules"]
    ]
    embedded_link = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")
    assert texts and not any(embedded_link.search(t) for t in texts)
    escaped = r"\[approve the waiver\](https://phish.example/) and \[here\](0) \\[kept\\]"
    assert run["results"][0]["message"]["text"] == escaped
