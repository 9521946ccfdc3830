"""``-o -``: a command's document written to standard output instead of a file."""

from __future__ import annotations

import sys
from pathlib import Path

from guard.errors import UsageError


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
