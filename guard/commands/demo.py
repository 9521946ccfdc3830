"""`guard demo`: the end-to-end walk-through (steps in guard.demo; see guard.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Run in this directory and keep it (default: a temporary directory, removed afterwards).",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary directory to look at the files.")
    ] = False,
) -> None:
    """Walk through guard end to end on embedded defaults: sign and verify a small model, push it to
    an OCI layout store and verify it there, sign its ML-BOM and dataset provenance, evaluate sample
    workloads against the policy library, and send workloads to the webhook over HTTPS."""
    from rich.console import Console  # noqa: PLC0415

    from guard.demo import run_demo  # noqa: PLC0415

    run_demo(Console(highlight=False, soft_wrap=True), workdir, keep=keep)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("demo")(demo)
