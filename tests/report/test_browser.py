"""The HTML report as a person sees it: opened in headless Chromium with the network blocked.
And the PDF printed from it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from guard.errors import ReportError
from guard.report.build import build_report
from guard.report.catalogue import Catalogue
from guard.report.charts import family_chart
from guard.report.html import render_html
from guard.report.model import Report
from guard.report.pdf import PdfRenderer, find_chromium
from guard.scan.result import SEVERITY_ORDER, ScanResult
from tests.report.conftest import HOSTILE, T0

pytestmark = pytest.mark.browser
DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "report" / "report-html.png"


@pytest.fixture(scope="module", autouse=True)
def _need_chromium() -> None:
    try:
        find_chromium()
    except ReportError as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install chromium (.ci/run): {err}")
        pytest.skip(str(err))


@pytest.fixture
def report(result: ScanResult, previous: ScanResult, catalogue: Catalogue) -> Report:
    return build_report(result, catalogue, generated=T0, previous=previous)


def test_html_renders_offline_with_the_document_numbers(
    report: Report, result: ScanResult, tmp_path: Path
) -> None:
    from guard.testing.browser import chromium_page

    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    with chromium_page() as browser:
        run = browser.open(page)
        assert run.requests == [] and run.console_errors == []
        marks = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('figure.chart')]"
            ".map(f => [f.id, f.querySelectorAll('rect.mark').length]))"
        )
        assert marks == {
            "chart-severity": len(SEVERITY_ORDER),
            "chart-family": len(family_chart(report).bars),
            "chart-energy": 2,
        }
        assert browser.evaluate("document.querySelectorAll('#chart-energy line.limit').length") == 2
        cluster = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('tr[data-scope=cluster] td[data-field]')]"
            ".map(td => [td.dataset.field, td.textContent.trim()]))"
        )
        assert {s: int(cluster[s]) for s in SEVERITY_ORDER} == result.summary.by_severity
        assert int(cluster["workloads"]) == result.summary.workloads
        assert int(cluster["pods"]) == result.summary.pods
        assert browser.evaluate("document.querySelectorAll('tr.energy-finding').length") == 1
        rows = browser.evaluate("document.querySelectorAll('#findings-table tr.finding').length")
        assert rows == result.summary.findings
        severities = browser.evaluate(
            "[...document.querySelectorAll('tr.finding')].map(r => r.dataset.severity)"
        )
        assert severities == sorted(severities, key=SEVERITY_ORDER.index)  # failures first, worst first
        # a hostile name stays text: no script element, the text shown as written
        assert browser.evaluate("document.scripts.length") == 0
        assert HOSTILE in browser.evaluate("document.getElementById('findings-table').innerText")
        # passes collapsed by default, failing controls shown
        assert browser.evaluate("document.querySelectorAll('details[open]').length") == 0
        assert browser.evaluate("document.querySelectorAll('#controls-failing tr.control').length") == sum(
            1 for c in report.coverage if c.status == "fail"
        )
        shot = tmp_path / "report.png"
        browser.screenshot(shot)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("GUARD_UPDATE_DOCS"):  # refresh the README's screenshot
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_pdf_is_printed_from_the_html(report: Report) -> None:
    data = PdfRenderer().render(report)
    assert data.startswith(b"%PDF-")
    assert b"/Type /Page" in data or b"/Type/Page" in data


def test_pdf_without_chromium_says_what_to_install(
    report: Report, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GUARD_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ReportError, match=r"apt-get install chromium"):
        PdfRenderer().render(report)
    monkeypatch.setenv("GUARD_CHROMIUM", str(tmp_path / "nope"))
    with pytest.raises(ReportError, match="GUARD_CHROMIUM"):
        PdfRenderer().render(report)


def test_harness_sees_requests_and_console_errors(tmp_path: Path) -> None:
    """The checks above are not vacuous: a page that loads things and logs an error is caught."""
    from guard.testing.browser import chromium_page

    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://cdn.example.com/x.css">'
        '</head><body><img src="http://example.com/x.png"><script>console.error("boom")</script>'
        "</body></html>"
    )
    with chromium_page() as browser:
        run = browser.open(page)
    assert run.requests == ["https://cdn.example.com/x.css", "http://example.com/x.png"]
    assert any("boom" in e for e in run.console_errors)
