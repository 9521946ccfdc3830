"""What a report format is: a name, a file extension, a media type and a pure ``render``."""

from __future__ import annotations

from typing import Protocol

from guard.report.model import Report


class Renderer(Protocol):
    name: str
    extension: str
    media_type: str

    def render(self, report: Report) -> bytes: ...
