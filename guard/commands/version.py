"""`guard version`: the version of guard and of what it runs on."""

from __future__ import annotations

import platform
from typing import Annotated

import typer

from guard import __version__
from guard.commands.output import print_json


def version_info() -> dict[str, str]:
    """The ``guard version --json`` document (camelCase, as every JSON output)."""
    return {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def version(
    json_output: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")] = False,
) -> None:
    """Print guard's version.

    Example:

      guard version --json
    """
    info = version_info()
    if json_output:
        print_json(info)
    else:
        typer.echo(f"guard {info['version']} (Python {info['python']}, {info['platform']})")


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("version")(version)
