"""`guard` commands for the oci capability (see guard.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
