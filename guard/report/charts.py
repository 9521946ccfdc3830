"""Bar charts as data for inline SVG: the template draws each bar as one ``rect.mark``.

Coordinates are computed here from the numbers; labels stay text (the template escapes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from guard.report.model import Report
from guard.scan.result import SEVERITY_ORDER

WIDTH, BAR_H, GAP, LABEL_W, VALUE_W = 560, 18, 6, 190, 130


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    y: int
    width: float
    css: str
    limit_x: float | None = None  # a budget marker, when there is one


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    bars: tuple[Bar, ...]
    height: int
    label_w: int = LABEL_W
    plot_w: int = WIDTH - LABEL_W - VALUE_W


def _chart(cid: str, title: str, rows: Sequence[tuple[str, float, str, str, float | None]]) -> Chart:
    plot = WIDTH - LABEL_W - VALUE_W
    top = max([v for _, v, _, _, _ in rows] + [lim or 0 for *_, lim in rows] + [1e-9])
    bars = tuple(
        Bar(
            label=label,
            value=value,
            text=text,
            y=i * (BAR_H + GAP),
            width=round(plot * value / top, 1),
            css=css,
            limit_x=None if limit is None else round(LABEL_W + plot * limit / top, 1),
        )
        for i, (label, value, text, css, limit) in enumerate(rows)
    )
    return Chart(id=cid, title=title, bars=bars, height=max(1, len(bars)) * (BAR_H + GAP))


def severity_chart(report: Report) -> Chart:
    counts = report.overall.findings_by_severity
    rows = [(s, float(counts.get(s, 0)), str(counts.get(s, 0)), f"sev-{s}", None) for s in SEVERITY_ORDER]
    return _chart("chart-severity", "Open findings by severity", rows)


def family_chart(report: Report) -> Chart:
    counts: dict[str, int] = {}
    for f in report.findings:
        families = {
            c.family if c.framework != "OTHER" else c.framework for c in report.coverage if c.id in f.controls
        } or {"(no control)"}
        for family in families:
            counts[family] = counts.get(family, 0) + 1
    rows = [
        (k, float(v), str(v), "fam", None) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return _chart("chart-family", "Findings by control family", rows)


def energy_chart(report: Report) -> Chart | None:
    tenants = [s for s in report.summaries if s.kind == "tenant" and s.energy is not None]
    if not tenants:
        return None
    rows = []
    for s in tenants:
        e = s.energy
        assert e is not None
        text = f"{e.kg_co2e:.1f} kg" + (f" / {e.budget_kg_co2e:.0f}" if e.budget_kg_co2e is not None else "")
        rows.append((s.name, e.kg_co2e, text, "over" if e.over_budget else "under", e.budget_kg_co2e))
    return _chart("chart-energy", "CO2e per tenant against budget (kg)", rows)
