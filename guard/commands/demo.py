"""`guard demo`: the end-to-end walk-through (its sections are guard.demo; see guard.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


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
) -> None:
    """Walk through guard end to end: sign, verify, push, attest, evaluate policies, admit."""
    from rich.console import Console  # noqa: PLC0415

    # guard.testing (not in the wheel) is optional: without its registry fixture the demo reads
    # the models from a local OCI layout mirror and says so in its final line.
    from guard.demo import run_demo  # noqa: PLC0415

    run_demo(Console(highlight=False, soft_wrap=True), workdir, keep=keep)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("demo")(demo)
