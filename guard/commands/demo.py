"""`guard demo`: the end-to-end walk-through (its sections are guard.demo; see guard.cli)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from guard.commands.json_failure import failure_fields
from guard.commands.output import print_json

if TYPE_CHECKING:
    from guard.demo import DemoContext


def _failure_fields(err: BaseException, params: Mapping[str, Any]) -> dict[str, Any]:
    """``guard demo --json`` on failure (``guard.commands.json_failure``): not complete."""
    return _document(None, err)


def _document(ctx: DemoContext | None, err: BaseException | None, *, kept: bool = False) -> dict[str, Any]:
    """``complete``: every step behaved as shown; ``allShown``: and every section could run."""
    not_shown = list(ctx.extras.get("not_shown", [])) if ctx is not None else []
    return {
        "complete": err is None,
        "allShown": err is None and not not_shown,
        "sections": ctx.sections if ctx is not None else None,
        "notShown": not_shown,
        "notes": list(ctx.notes) if ctx is not None else [],
        "workdir": str(ctx.workdir) if ctx is not None and kept else None,
        "error": type(err).__name__ if err is not None else None,
        "reason": str(err) if err is not None else None,
    }


@failure_fields(_failure_fields)
def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Run in this directory and keep it; a directory an earlier guard demo made is emptied "
            "and reused (default: a temporary directory, removed afterwards).",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary directory to look at the files.")
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="The narrative to standard error; to standard output, what the final line says, as JSON.",
        ),
    ] = False,
) -> None:
    """Walk through guard end to end: sign, verify, push, attest, evaluate policies, admit."""
    from rich.console import Console  # noqa: PLC0415

    # guard.testing (not in the wheel) is optional: without its registry fixture the demo reads
    # the models from a local OCI layout mirror and says so in its final line.
    from guard.demo import run_demo  # noqa: PLC0415

    console = Console(highlight=False, soft_wrap=True, stderr=json_output)
    ctx = run_demo(console, workdir, keep=keep)
    if json_output:
        print_json(_document(ctx, None, kept=workdir is not None or keep))


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("demo")(demo)
