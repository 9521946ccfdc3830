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

    from guard.errors import UsageError  # noqa: PLC0415
    from guard.shipped import test_doubles_missing  # noqa: PLC0415

    missing = test_doubles_missing("guard demo")  # before importing the demo, which uses them
    if missing:
        raise UsageError(missing)
    from guard.demo import run_demo  # noqa: PLC0415

    if workdir is not None:
        prepare_workdir(workdir)
    run_demo(Console(highlight=False, soft_wrap=True), workdir, keep=keep)


MARKER = ".guard-demo"


def prepare_workdir(workdir: Path) -> None:
    """``--workdir`` can be given again: a directory an earlier ``guard demo`` made (it holds
    ``.guard-demo``) is emptied first. Any other non-empty directory is refused: the demo never
    deletes files it did not write."""
    import shutil  # noqa: PLC0415

    from guard.errors import UsageError  # noqa: PLC0415

    if workdir.exists() and not workdir.is_dir():
        raise UsageError(f"--workdir {workdir}: expected a directory, found a file")
    if workdir.is_dir() and any(workdir.iterdir()):
        if not (workdir / MARKER).is_file():
            raise UsageError(
                f"--workdir {workdir}: expected an empty directory or one an earlier guard demo "
                f"made (with {MARKER}), found other files; they are left alone"
            )
        for child in workdir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by guard demo: emptied when guard demo --workdir runs again\n")


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("demo")(demo)
