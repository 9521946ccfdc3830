"""``--format json``: the report model as JSON (its schema: ``guard.report.model.report_schema``)."""

from __future__ import annotations

from guard.report.model import Report


class JsonRenderer:
    name = "json"
    extension = "json"
    media_type = "application/vnd.guard.report.v1+json"

    def render(self, report: Report) -> bytes:
        return report.to_json().encode()
