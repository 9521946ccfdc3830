"""``--format html``: one self-contained file (no scripts, fonts, styles or images from anywhere;
a Content-Security-Policy that forbids loading any), readable offline and printable.

Failures first: the summary, the charts (inline SVG drawn from the numbers), the findings, the
failing controls; passing and not-assessed controls are collapsed. Rendered by Jinja2 with
autoescape on, so names from the cluster are always text, never markup.
"""

from __future__ import annotations

from functools import cache

import jinja2

from guard.report.charts import energy_chart, family_chart, severity_chart
from guard.report.model import Report
from guard.scan.result import SEVERITY_ORDER


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("guard", "data/report"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def render_html(report: Report, *, expand: bool = False, max_findings: int | None = None) -> str:
    """The HTML page; ``expand`` opens the collapsed sections (for printing); ``max_findings``
    lists only that many findings, the most severe, and says so."""
    charts = [severity_chart(report), family_chart(report)]
    energy = energy_chart(report)
    if energy is not None:
        charts.append(energy)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            a=report.appendix,
            severities=SEVERITY_ORDER,
            charts=charts,
            pct=_pct,
            failing=[c for c in report.coverage if c.status == "fail"],
            passing=[c for c in report.coverage if c.status == "pass"],
            unassessed=[c for c in report.coverage if c.status == "not-assessed"],
            open_attr=" open" if expand else "",
            shown=report.findings if max_findings is None else report.findings[:max_findings],
        )
    )


class HtmlRenderer:
    name = "html"
    extension = "html"
    media_type = "text/html"

    def render(self, report: Report) -> bytes:
        return render_html(report).encode()
