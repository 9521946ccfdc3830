"""Run the demo's sections in order, in a work directory, and end with a line that tells the truth."""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from guard.demo.context import DemoContext, DemoFailed
from guard.errors import GuardError, UsageError

DemoStep = Callable[[DemoContext], None]

# One module per section; "module:function", imported when the demo runs.
SECTIONS: list[DemoStep | str] = [
    "guard.demo.signing:step_make_model",
    "guard.demo.signing:step_keygen",
    "guard.demo.signing:step_sign",
    "guard.demo.signing:step_verify",
    "guard.demo.signing:step_tamper",
    "guard.demo.oci:step_push_and_verify",
    "guard.demo.attest:step_attestations",
    "guard.demo.policy:step_policies",
    "guard.demo.webhook:step_webhook",
]
MARKER = ".guard-demo"


def resolve_step(step: DemoStep | str) -> DemoStep:
    if callable(step):
        return step
    module, _, name = step.partition(":")
    fn = getattr(importlib.import_module(module), name)
    if not callable(fn):
        raise TypeError(f"demo step {step} is not callable")
    return fn  # type: ignore[no-any-return]


def prepare_workdir(workdir: Path) -> Path:
    """A work directory the demo may fill: an empty one, or one an earlier ``guard demo`` made
    (it holds ``.guard-demo``), which is emptied first. Any other non-empty directory is refused:
    the demo never deletes files it did not write."""
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
    return workdir.resolve()


def run_demo(
    console: Console | None = None,
    workdir: Path | None = None,
    *,
    keep: bool = False,
    steps: list[DemoStep | str] | None = None,
) -> DemoContext:
    """Run the sections in ``workdir`` (prepared by ``prepare_workdir``; default: a temporary
    directory, removed afterwards unless ``keep``). Raises DemoFailed when a step did not behave
    as the demo showed it would."""
    console = console or Console(highlight=False, soft_wrap=True)
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="guard-demo-")) if workdir is None else workdir
    ctx = DemoContext(workdir=prepare_workdir(root), console=console)
    console.print(f"[bold]guard demo[/] in {ctx.workdir}: every [dim]$ guard ...[/] line runs there as shown")
    try:
        for step in SECTIONS if steps is None else steps:
            _run_step(ctx, step)
    finally:
        console.print()
        if own and not keep:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
        else:
            console.print(f"files kept in {ctx.workdir}")
    console.print(_final_line(ctx))  # the last line: what happened (a failure ends in the error)
    return ctx


def _run_step(ctx: DemoContext, step: DemoStep | str) -> None:
    before = ctx.sections
    try:
        resolve_step(step)(ctx)
    except Exception as err:  # any failure of a section is the demo's failure, said as such
        where = f"section {ctx.sections}" if ctx.sections > before else f"step {step}"
        reason = str(err) if isinstance(err, GuardError) else f"{type(err).__name__}: {err}"
        raise DemoFailed(f"demo failed in {where}: a step did not behave as shown: {reason}") from err


def _final_line(ctx: DemoContext) -> str:
    not_shown = ctx.extras.get("not_shown", [])
    if not_shown:
        return "[bold yellow]demo complete, but not everything could be shown[/]: " + escape(
            "; ".join(not_shown)
        )
    how = f" Note: {'; '.join(ctx.notes)}." if ctx.notes else ""
    return (
        "[bold green]demo complete[/]: every step behaved as shown: what was signed verified; what was "
        f"changed, unsigned, missing or against policy was refused.{escape(how)}"
    )
