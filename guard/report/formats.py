"""The report formats by name (``--format``), each a Renderer in its own module."""

from __future__ import annotations

from typing import Final

from guard.errors import ReportError
from guard.report.base import Renderer

FORMATS: Final = ("html", "pdf", "md", "csv", "json", "sarif", "junit", "oscal")


def renderer(name: str) -> Renderer:
    """The renderer of format ``name`` (its module imported on demand)."""
    if name == "html":
        from guard.report.html import HtmlRenderer  # noqa: PLC0415

        return HtmlRenderer()
    if name == "pdf":
        from guard.report.pdf import PdfRenderer  # noqa: PLC0415

        return PdfRenderer()
    if name == "md":
        from guard.report.md import MarkdownRenderer  # noqa: PLC0415

        return MarkdownRenderer()
    if name == "csv":
        from guard.report.csvfile import CsvRenderer  # noqa: PLC0415

        return CsvRenderer()
    if name == "json":
        from guard.report.jsonfile import JsonRenderer  # noqa: PLC0415

        return JsonRenderer()
    if name == "sarif":
        from guard.report.sarif import SarifRenderer  # noqa: PLC0415

        return SarifRenderer()
    if name == "junit":
        from guard.report.junit import JunitRenderer  # noqa: PLC0415

        return JunitRenderer()
    if name == "oscal":
        from guard.report.oscal import OscalRenderer  # noqa: PLC0415

        return OscalRenderer()
    raise ReportError(f"--format: expected one of {', '.join(FORMATS)}, found {name!r}")
