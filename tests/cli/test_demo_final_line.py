"""The demo's final line says what could not be shown, instead of claiming full success."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from guard.demo import DemoContext, run_demo


def _run(tmp_path: Path, step: object) -> str:
    out = io.StringIO()
    run_demo(Console(file=out, width=200), tmp_path / "w", steps=[step])  # type: ignore[list-item]
    return out.getvalue()


def test_a_section_that_could_not_be_shown_is_named_on_the_final_line(tmp_path: Path) -> None:
    def degraded(ctx: DemoContext) -> None:
        ctx.extras.setdefault("not_shown", []).append("the webhook verifying a signed model (no registry)")

    text = _run(tmp_path, degraded)
    assert "not everything could be shown: the webhook verifying a signed model (no registry)" in text
    assert "every step behaved as expected" not in text


def test_full_success_is_said_only_when_everything_ran(tmp_path: Path) -> None:
    def fine(ctx: DemoContext) -> None:
        ctx.console.print("ok")

    assert "every step behaved as expected" in _run(tmp_path, fine)
