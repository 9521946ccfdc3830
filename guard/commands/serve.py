"""`guard serve`: the admission webhook over TLS (see guard.cli)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from guard.errors import InfrastructureError, UsageError


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""

    @app.command("serve")
    def serve_command(
        *,
        tls_cert: Annotated[
            Path,
            typer.Option("--tls-cert", help="PEM certificate (chain) served; reloaded when it changes."),
        ],
        tls_key: Annotated[Path, typer.Option("--tls-key", help="PEM private key of the certificate.")],
        config: Annotated[
            Path | None,
            typer.Option("--config", help="guard config file (YAML): trust rules, policies, admission."),
        ] = None,
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "0.0.0.0",  # noqa: S104
        port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8443,
        workers: Annotated[
            int,
            typer.Option(
                "--workers", help="Worker processes (each loads the config and caches on its own)."
            ),
        ] = 1,
    ) -> None:
        """Serve the admission webhook: POST /validate, GET /healthz, /readyz, /metrics."""
        if not 0 < port < 65536:
            raise UsageError(f"--port: expected 1-65535, found {port}")
        if workers < 1:
            raise UsageError(f"--workers: expected at least 1, found {workers}")
        for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
            if not path.is_file():
                raise UsageError(f"{option}: expected a PEM file, found no file at {path}")
        serve = _transport("https")
        serve(config, tls_cert, tls_key, host=host, port=port, workers=workers)


def _transport(name: str) -> Callable[..., None]:
    """The serving transport, found through the ``guard.transports`` entry points: guard never
    imports ``webhook`` (dependencies run webhook -> guard); the webhook package plugs in."""
    found = entry_points(group="guard.transports", name=name)
    if not found:
        raise InfrastructureError(
            f"no {name!r} transport is installed (entry point group guard.transports); reinstall "
            f"cnai-guard, which ships it in the webhook package"
        )
    serve: Callable[..., None] = next(iter(found)).load()
    return serve
