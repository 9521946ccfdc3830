"""What the demo's sections share: the work directory, the console, and ``guard(...)``, which runs
the real CLI in a child process exactly as the line it prints (``$ guard ...``, in the work
directory) and checks its exit code."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from guard.errors import GuardError

# What the ``guard`` console script runs (pyproject's [project.scripts]), with this interpreter.
GUARD = [sys.executable, "-c", "from guard.cli import main; main()"]
OUTPUT_LINES = 40  # a command's output shown in full up to this many lines


class DemoFailed(GuardError):
    """A demo step did not observe what it should have (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Ran:
    """A finished ``guard`` command: its exit code and output."""

    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as err:
            raise DemoFailed(
                f"guard {shlex.join(self.argv)}: expected JSON on stdout, found {self.stdout[:200]!r}"
            ) from err


@dataclass
class DemoContext:
    """The work directory (every path a command names is relative to it), the console, and what
    sections leave for later ones (``extras``). ``notes`` end up on the final line: what could not
    be shown, or was shown another way, and why."""

    workdir: Path
    console: Console
    extras: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sections: int = 0
    model: str = "tiny-sentiment"
    private_key: str = "keys/demo-key.pem"
    public_key: str = "keys/demo-key.pub.pem"
    signature: str = "tiny-sentiment.sig"

    def path(self, relative: str) -> Path:
        return self.workdir / relative

    def title(self, text: str) -> None:
        self.sections += 1
        self.console.print()
        self.console.rule(f"[bold]{self.sections}. {escape(text)}", align="left")

    def say(self, text: str) -> None:
        self.console.print(escape(text), highlight=False)

    def ok(self, text: str) -> None:
        self.console.print(f"[green]✓[/] {escape(text)}", highlight=False)

    def refused(self, text: str) -> None:
        self.console.print(f"[red]✗[/] {escape(text)}", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(f"[yellow]note:[/] {escape(text)}", highlight=False)

    def guard(self, *argv: str, expect: int = 0) -> Ran:
        """Run ``guard ARGV`` in the work directory, show what it printed (with ``--json``: its
        stderr; the JSON is for the demo to read), and fail unless it exits with ``expect``."""
        self.console.print(f"[dim]$[/] guard {escape(shlex.join(argv))}", highlight=False)
        env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
        done = subprocess.run(  # noqa: S603 - this interpreter running guard's own CLI
            [*GUARD, *argv], cwd=self.workdir, capture_output=True, text=True, env=env, check=False
        )
        ran = Ran(tuple(argv), done.returncode, done.stdout, done.stderr)
        shown = done.stderr if "--json" in argv else done.stderr + done.stdout
        self._show_output(shown)
        if ran.code != expect:
            said = " ".join((done.stderr.strip() or done.stdout).split())  # one line
            raise DemoFailed(
                f"guard {shlex.join(argv)} exited {ran.code}, expected {expect}: "
                f"{said if len(said) <= 600 else said[:597] + '...'}"
            )
        return ran

    def _show_output(self, text: str) -> None:
        lines = [line for line in text.splitlines() if line.strip()]
        for line in lines[:OUTPUT_LINES]:
            self.console.print(f"  [dim]{escape(line)}[/]", highlight=False)
        if len(lines) > OUTPUT_LINES:
            self.console.print(f"  [dim]... {len(lines) - OUTPUT_LINES} more lines[/]", highlight=False)
