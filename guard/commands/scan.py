"""`guard scan` and `guard scan merge` (see guard.cli and README, section scan)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    scan_app = typer.Typer(
        name="scan",
        help="Audit the AI workloads running in a cluster (or a snapshot of one).",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    @scan_app.callback()
    def scan_command(
        ctx: typer.Context,
        schema: Annotated[
            bool, typer.Option("--schema", help="Print the result document's JSON Schema and exit.")
        ] = False,
    ) -> None:
        """Audit running workloads with admission's verification and policies."""
        if ctx.invoked_subcommand is not None:
            return
        if schema:
            from guard.scan.result import shipped_schema_text  # noqa: PLC0415

            typer.echo(shipped_schema_text(), nl=False)
            return

    app.add_typer(scan_app)
