"""``--format md``: a Markdown summary for pull requests and wikis (GitHub-flavoured tables).

Every value from the scan is escaped: Markdown's punctuation gets a backslash, ``<``, ``>`` and
``&`` become entities (no raw HTML reaches the page), line breaks become spaces, so a name in a
cluster cannot inject links, images, markup or table cells.
"""

from __future__ import annotations

import re

from guard.report.model import ControlRow, Report, ScopeSummary
from guard.scan.result import SEVERITY_ORDER

_PUNCT = re.compile(r"([\\`*_\[\]|~#!])")  # inline syntax: emphasis, code, links, tables
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_FINDINGS = 200  # a PR comment is at most 65,536 characters; the rest is in the other formats


def esc(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"[\r\n\t]+", " ", text)
    text = _CONTROL.sub("\ufffd", text)
    return _PUNCT.sub(r"\\\1", text)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _summary_rows(summaries: tuple[ScopeSummary, ...]) -> list[list[str]]:
    rows = []
    for s in summaries:
        sev = [str(s.findings_by_severity.get(k, 0)) for k in SEVERITY_ORDER]
        energy = "-"
        if s.energy is not None:
            energy = f"{s.energy.kwh:.1f} kWh, {s.energy.kg_co2e:.1f} kg CO2e"
            if s.energy.budget_kg_co2e is not None:
                energy += f" / budget {s.energy.budget_kg_co2e:.1f}"
        rows.append([esc(s.kind), esc(s.name), str(s.workloads), _pct(s.compliance), *sev, esc(energy)])
    return rows


def _control_row(c: ControlRow) -> list[str]:
    return [
        esc(c.id),
        esc(c.title),
        esc(c.status),
        f"{c.passed}/{c.assessed}",
        _pct(c.compliance),
        esc(", ".join(c.rules) or "-"),
    ]


class MarkdownRenderer:
    name = "md"
    extension = "md"
    media_type = "text/markdown"

    def render(self, report: Report) -> bytes:
        a = report.appendix
        out = [f"# {esc(report.title)}", ""]
        out.append(
            f"Scan {esc(a.scan_id)}, finished {esc(a.finished.isoformat())}, guard {esc(a.guard_version)}."
        )
        if a.partial:
            out += [
                "",
                f"**Partial audit**: {esc('; '.join(a.partial_reasons) or 'see the evidence appendix')}",
            ]
        out += ["", "## Summary", ""]
        header = [
            "Scope",
            "Name",
            "Workloads",
            "Compliance",
            *[s.capitalize() for s in SEVERITY_ORDER],
            "Energy",
        ]
        out += _table(header, _summary_rows(report.summaries))
        failing = [c for c in report.coverage if c.status == "fail"]
        out += ["", f"## Failing controls ({len(failing)})", ""]
        if failing:
            out += _table(
                ["Control", "Title", "Status", "Passed", "Compliance", "Rules"],
                [_control_row(c) for c in failing],
            )
        else:
            out.append("None.")
        if report.energy_findings:
            out += ["", f"## Energy and carbon findings ({len(report.energy_findings)})", ""]
            out += _table(
                ["Severity", "Tenant", "Rule", "Message"],
                [
                    [esc(f.severity), esc(f.tenant or "-"), esc(f.rule), esc(f.message)]
                    for f in report.energy_findings
                ],
            )
        if report.deltas is not None:
            d = report.deltas
            out += [
                "",
                f"## Changes since scan {esc(d.previous_scan)}",
                "",
                f"New: {len(d.new)}, resolved: {len(d.resolved)}, persisting: {len(d.persisting)}.",
            ]
        shown = report.findings[:MAX_FINDINGS]
        out += ["", f"## Findings ({len(report.findings)})", ""]
        if len(report.findings) > len(shown):
            out += [f"The {len(shown)} most severe are listed; the other formats hold all of them.", ""]
        out += _table(
            ["Severity", "Resource", "Rule", "Message", "Controls"],
            [
                [
                    esc(f.severity) + (" (new)" if f.delta == "new" else ""),
                    esc(f"{f.kind} {f.namespace}/{f.name}"),
                    esc(f.rule),
                    esc(f.message),
                    esc(", ".join(f.controls)),
                ]
                for f in shown
            ],
        )
        assessed = sum(1 for c in report.coverage if c.status != "not-assessed")
        out += [
            "",
            f"Controls assessed: {assessed} of {len(report.coverage)} in guard's catalogue; the others "
            "are not assessed by guard.",
        ]
        return ("\n".join(out) + "\n").encode()
