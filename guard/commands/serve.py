"""`guard serve`: the admission webhook over TLS (see guard.cli)."""

from __future__ import annotations

import errno
import gc
import socket
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from guard.errors import ConfigError, InfrastructureError, UsageError

if TYPE_CHECKING:
    from guard.config import GuardConfig
    from guard.policy.engine import PolicyEngine


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
        host: Annotated[
            str, typer.Option("--host", help="Address (or name) of this machine to listen on; :: for IPv6.")
        ] = "0.0.0.0",  # noqa: S104
        port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8443,
        workers: Annotated[
            int,
            typer.Option("--workers", help="Worker processes (each loads the config and caches on its own)."),
        ] = 1,
        metrics_port: Annotated[
            int,
            typer.Option(
                "--metrics-port",
                help="Serve GET /metrics in plain HTTP on this port (same --host), never on the "
                "admission port (the chart sets 9090); 0: no metrics. One worker only.",
            ),
        ] = 0,
    ) -> None:
        """Serve the admission webhook over TLS, and its metrics in plain HTTP. Over TLS: POST
        /validate, /mutate, GET /healthz, /readyz; GET /metrics on --metrics-port."""
        gc.disable()  # for start-up: the webhook's lifespan turns it back on (webhook.server)
        try:
            _serve(
                config, tls_cert, tls_key, host=host, port=port, workers=workers, metrics_port=metrics_port
            )
        finally:
            gc.enable()


def _serve(
    config: Path | None,
    tls_cert: Path,
    tls_key: Path,
    *,
    host: str,
    port: int,
    workers: int,
    metrics_port: int,
) -> None:
    if not 0 < port < 65536:
        raise UsageError(f"--port: expected 1-65535, found {port}")
    if workers < 1:
        raise UsageError(f"--workers: expected at least 1, found {workers}")
    if not 0 <= metrics_port < 65536 or metrics_port == port:
        raise UsageError(
            f"--metrics-port: expected 0 or a port 1-65535 other than --port {port}, found {metrics_port}"
        )
    if metrics_port and workers > 1:
        raise UsageError(
            f"--metrics-port {metrics_port} with --workers {workers}: each worker counts apart, so "
            f"the metrics listener runs with one worker only; give --metrics-port 0 or --workers 1"
        )
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if not path.is_file():
            raise UsageError(f"{option}: expected a PEM file, found no file at {path}")
    check_host(host)
    loaded, policy_engine = check_config(config)
    serve = _transport("https")
    serve(
        config,
        tls_cert,
        tls_key,
        host=host,
        port=port,
        workers=workers,
        metrics_port=metrics_port,
        loaded=loaded,
        policy_engine=policy_engine,
    )


def check_host(host: str) -> None:
    """``--host`` must be an address of this machine, or a name that resolves to one: checked the
    way uvicorn binds it (IPv6 when the text holds a colon), on a free port, before anything starts."""
    if not host.strip():
        raise UsageError("--host: expected an address or host name, found an empty string")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, 0))
        except (socket.gaierror, UnicodeError) as err:
            reason = err.strerror if isinstance(err, socket.gaierror) else str(err)
            raise UsageError(f"--host {host}: not an address or resolvable name ({reason})") from err
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                raise UsageError(
                    f"--host {host}: not an address of this machine (expected a local address, 0.0.0.0 or ::)"
                ) from err
            # anything else (permissions, ...) is the server's to report when it binds its port


def check_config(config_path: Path | None) -> tuple[GuardConfig, PolicyEngine | None]:
    """Load what the webhook loads at start-up and can be checked here, before the server starts,
    so that a mistake is one line and exit 2 rather than a failed start-up in the server's log:
    the config, its cross-references, every authority's key / certificate roots / trust config,
    the registry CA bundle, and the embedded engine's policy library. (An OPA server is asked when
    the webhook starts: while it does not answer, ``/readyz`` says not ready.) The CA bundle loads
    on another thread meanwhile and stays loaded: the webhook's registry clients use it as it is.
    Returns the config and the embedded engine made (None for an OPA engine), which the webhook
    uses as they are rather than loading and parsing them again (~20 ms)."""
    from guard.admission.verifier import registry_access  # noqa: PLC0415
    from guard.admission.wiring import check_admission_config  # noqa: PLC0415
    from guard.config import authority_verifiers, load_config  # noqa: PLC0415
    from guard.oci.client import warm_up_started  # noqa: PLC0415
    from guard.policy.engine import make_engine  # noqa: PLC0415
    from guard.policy.settings import EmbeddedEngineSettings  # noqa: PLC0415

    config = load_config(config_path)
    ca_bundle = warm_up_started(registry_access(config))  # the webhook's own access, loaded early
    policy_engine = None
    try:
        check_admission_config(config)
        authority_verifiers(config)
        if isinstance(config.policy.engine, EmbeddedEngineSettings):
            policy_engine = make_engine(config.policy)
    finally:
        failed = ca_bundle()
    if failed is not None:
        raise ConfigError(f"admission.registry: {failed}") from failed
    return config, policy_engine


DISTRIBUTION = "cnai-guard"


def _transport(name: str) -> Callable[..., None]:
    """The serving transport, found through the ``guard.transports`` entry points of guard's own
    distribution: guard never imports ``webhook`` (dependencies run webhook -> guard); the webhook
    package, shipped in it, plugs in. Another installed distribution naming a transport of that
    name is not asked (it would serve every admission of the cluster; and which of two would win
    changed with the path's order), nor are the ~150 others read (~10 ms of start-up)."""
    try:
        found = distribution(DISTRIBUTION).entry_points.select(group="guard.transports", name=name)
    except PackageNotFoundError:
        found = None
    if not found:
        raise InfrastructureError(
            f"no {name!r} transport is installed (entry point group guard.transports of {DISTRIBUTION}); "
            f"reinstall {DISTRIBUTION}, which ships it in the webhook package"
        )
    serve: Callable[..., None] = next(iter(found)).load()
    return serve
