"""``--format pdf``: the HTML report (collapsed sections opened) printed by headless Chromium.

Chromium is found as ``$GUARD_CHROMIUM``, else ``chromium`` / ``chromium-browser`` /
``google-chrome`` on PATH; without one, a ReportError says what to install. It runs with a
throw-away profile, every host name resolving to nothing (the page needs no network: it is
self-contained and its CSP forbids loading anything), and a deadline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from guard.errors import InfrastructureError, ReportError
from guard.report.html import render_html
from guard.report.model import Report

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_SECONDS = 300
# Chromium lays out about 1,000 findings (some 150 pages) in seconds and 10,000 in minutes; a PDF
# lists the most severe and says so, the csv and json formats hold every finding.
MAX_PDF_FINDINGS = 1000


def find_chromium() -> str:
    given = os.environ.get("GUARD_CHROMIUM")
    if given:
        if shutil.which(given) is None:
            raise ReportError(f"GUARD_CHROMIUM={given}: expected a Chromium executable, found none there")
        return given
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ReportError(
        "--format pdf prints the HTML report with headless Chromium, and none was found "
        f"(looked for {', '.join(CANDIDATES)} on PATH): install it (Debian/Ubuntu: apt-get install "
        "chromium) or set GUARD_CHROMIUM to its path; the html format needs nothing"
    )


def chromium_flags(profile: Path) -> list[str]:
    flags = [
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-extensions",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return flags


def html_to_pdf(html: str) -> bytes:
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="guard-pdf-") as tmp:
        page, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        command = [
            chromium,
            *chromium_flags(Path(tmp) / "profile"),
            "--no-pdf-header-footer",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)  # noqa: S603
        except subprocess.TimeoutExpired as err:
            raise InfrastructureError(f"{chromium} did not print the PDF within {TIMEOUT_SECONDS} s") from err
        except OSError as err:
            raise ReportError(f"cannot run {chromium}: {err.strerror or err}") from err
        data = out.read_bytes() if out.is_file() else b""
        if done.returncode != 0 or not data.startswith(b"%PDF-"):
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            said = " / ".join(tail) or "no output"
            raise InfrastructureError(f"{chromium} exited {done.returncode} without writing a PDF: {said}")
        return data


class PdfRenderer:
    name = "pdf"
    extension = "pdf"
    media_type = "application/pdf"

    def render(self, report: Report) -> bytes:
        return html_to_pdf(render_html(report, expand=True, max_findings=MAX_PDF_FINDINGS))
