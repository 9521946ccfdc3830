"""``--format csv``: the findings, one row each (RFC 4180, UTF-8). Cells a spreadsheet would run
as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR) are neutralised with a leading
``'`` (OWASP's advice for CSV injection); names in a cluster are user-controlled."""

from __future__ import annotations

import csv
import io

from guard.report.model import FindingRow, Report

COLUMNS = (
    "severity",
    "delta",
    "category",
    "rule",
    "policy",
    "enforcement",
    "tenant",
    "namespace",
    "kind",
    "name",
    "replicas",
    "owner_chain",
    "container",
    "artifact",
    "digest",
    "running_digest",
    "signer",
    "bundle_digest",
    "log_index",
    "controls",
    "message",
    "remediation",
    "first_seen",
    "fingerprint",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _cell(row: FindingRow, column: str) -> str:
    value = getattr(row, column)
    if value is None:
        return ""
    if isinstance(value, tuple):
        text = " > ".join(value) if column == "owner_chain" else "; ".join(value)
    elif column == "first_seen":
        text = value.isoformat()
    else:
        text = str(value)
    return neutralise(text)


class CsvRenderer:
    name = "csv"
    extension = "csv"
    media_type = "text/csv"

    def render(self, report: Report) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in report.findings:
            writer.writerow([_cell(row, c) for c in COLUMNS])
        return out.getvalue().encode()
