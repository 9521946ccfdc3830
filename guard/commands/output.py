"""What a command writes on standard output: its ``--json`` document, or ``-o -`` content.

Every document and every ``-o -`` content goes through ``print_json`` / ``print_document`` /
``write_stdout``, which count them: ``guard.cli`` prints a failure's ``--json`` document only
when the run printed none before failing (``guard pin --check``, ``policy eval`` on a deny
print theirs, then fail), so standard output holds one document either way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from guard.errors import UsageError

_printed = [0]  # documents (or -o - contents) written on standard output by this process


def printed() -> int:
    """How many documents this process printed on standard output so far."""
    return _printed[0]


def print_json(document: Any) -> None:
    """``--json``: the command's document on standard output (indented by 2, one line end)."""
    print_document(json.dumps(document, indent=2))


def print_document(text: str, *, nl: bool = True) -> None:
    """A document already serialized (a scan result, an energy section) on standard output."""
    typer.echo(text, nl=nl)
    _printed[0] += 1


def stdout_output(output: Path | str, json_output: bool, what: str) -> bool:
    """Whether ``-o -`` names standard output; with --json it contradicts (two documents on
    stdout): a UsageError naming ``what`` (the report, the document)."""
    if str(output) != "-":
        return False
    if json_output:
        raise UsageError(f"--json describes the file written; with -o - the {what} itself is the output")
    return True


def write_stdout(data: bytes) -> None:
    """``data`` as it is, on standard output (bytes: a BOM or a PDF is not text to re-encode)."""
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    _printed[0] += 1
