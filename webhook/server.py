"""Run the webhook app under uvicorn over TLS.

- ``serve(...)``: what ``guard serve`` runs (one process, or ``workers`` processes sharing the
  socket; each worker loads the config and watches the certificate itself).
- ``WebhookServer``: the same server in a background thread on a socket bound here, for tests,
  the demo and benchmarks.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from guard.admission.metrics import AdmissionMetrics
from guard.admission.pinning import DigestPinner
from guard.admission.pipeline import AdmissionEngine
from guard.config import GuardConfig, load_config
from guard.errors import GuardError, InfrastructureError
from webhook import metrics_listener
from webhook.app import create_app
from webhook.deadline import DEFAULT_REQUEST_DEADLINE_SECONDS, DeadlineConfig
from webhook.logs import configure_json_logging
from webhook.tls import ReloadingCertificate, process_certificate

if TYPE_CHECKING:
    from guard.policy.engine import PolicyEngine

log = logging.getLogger("webhook")

ENV_CONFIG = "GUARD_WEBHOOK_CONFIG"
ENV_CERT = "GUARD_WEBHOOK_TLS_CERT"
ENV_KEY = "GUARD_WEBHOOK_TLS_KEY"


def engine_loader(
    config: GuardConfig, metrics: AdmissionMetrics, policy_engine: PolicyEngine | None = None
) -> Callable[[], Awaitable[AdmissionEngine]]:
    """The app's engine loader. ``policy_engine`` (made from ``config.policy`` already) is used by
    its first load only; a later one makes its own."""
    prepared = [policy_engine] if policy_engine is not None else []

    async def load() -> AdmissionEngine:
        from guard.admission.wiring import build_engine  # noqa: PLC0415 - heavy: policies, trust roots

        engine = await build_engine(config, metrics, policy_engine=prepared.pop() if prepared else None)
        await engine.warm_up()  # before /readyz says ready: the first admission pays for nothing
        engine.preconnect()  # the trust rules' registries, in the background: ready does not wait
        return engine

    return load


def build_app(
    config: GuardConfig,
    certificate: ReloadingCertificate | None,
    startup_errors: list[BaseException] | None = None,
    metrics: AdmissionMetrics | None = None,
    *,
    policy_engine: PolicyEngine | None = None,
) -> ASGIApp:
    """The webhook app; given ``metrics``, they are served elsewhere (not on this app's port).
    ``policy_engine``: the engine of ``config.policy``, made already (see ``engine_loader``)."""
    metrics_route = metrics is None
    metrics = metrics or AdmissionMetrics()
    return create_app(
        engine_loader(config, metrics, policy_engine),
        metrics=metrics,
        max_body_bytes=config.admission.max_body_bytes,
        certificate=certificate,
        startup_errors=startup_errors,
        pinner=lambda engine: DigestPinner(config, engine.resolve, engine.kinds),
        metrics_route=metrics_route,
    )


def start_up_without_gc() -> None:
    """Turn the garbage collector off until the app's start-up is done (its lifespan freezes what
    start-up loaded and turns it back on). Start-up imports and builds ~120,000 long-lived
    objects; the collections they trigger cost 10-15% of its CPU time, for ~2,000 freed."""
    gc.disable()


def start_metrics_listener(metrics: AdmissionMetrics, host: str, port: int) -> Callable[[], None]:
    """``GET /metrics`` in plain HTTP on its own port (``webhook.metrics_listener``, in a daemon
    thread, a bounded number of connections at once), apart from the admission port. Returns the
    function that stops it."""
    try:
        server, thread = metrics_listener.start(metrics.registry, host, port)
    except OSError as err:
        raise InfrastructureError(f"the metrics listener could not bind {host}:{port}: {err}") from err

    def stop() -> None:
        server.shutdown()
        thread.join(10)
        server.server_close()

    return stop


def app_from_environment() -> ASGIApp:
    """uvicorn factory for worker processes: config and TLS files from the environment."""
    start_up_without_gc()
    configure_json_logging()
    config = load_config(Path(os.environ[ENV_CONFIG])) if os.environ.get(ENV_CONFIG) else GuardConfig()
    certificate = process_certificate(Path(os.environ[ENV_CERT]), Path(os.environ[ENV_KEY]))
    # no /metrics on the admission port: one worker's counters would pass for the whole server's
    return build_app(config, certificate, metrics=AdmissionMetrics())


def context_from_environment(
    _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    """uvicorn ssl_context_factory for worker processes (module level: picklable)."""
    return process_certificate(Path(os.environ[ENV_CERT]), Path(os.environ[ENV_KEY])).context


def _uvicorn_options(host: str, port: int, request_deadline_seconds: float) -> dict[str, Any]:
    return {
        "request_deadline_seconds": request_deadline_seconds,
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,
        "server_header": False,
    }


def serve(
    config_path: Path | None,
    tls_cert: Path,
    tls_key: Path,
    *,
    host: str = "0.0.0.0",  # noqa: S104 - a webhook must be reachable by the API server
    port: int = 8443,
    workers: int = 1,
    metrics_port: int = 0,
    loaded: GuardConfig | None = None,
    policy_engine: PolicyEngine | None = None,
) -> None:
    """Serve until interrupted. Raises ConfigError for a bad config or TLS pair. ``metrics_port``
    (not 0): ``/metrics`` in plain HTTP on that port (one worker only); the admission port never
    serves it. ``loaded`` / ``policy_engine``: the config of ``config_path`` and the engine of its
    ``policy``, loaded and made already (``guard serve`` checks them before it starts): used as
    they are by one worker; ``workers`` > 1 load their own."""
    start_up_without_gc()
    configure_json_logging()
    config = loaded if loaded is not None else load_config(config_path)
    certificate = process_certificate(tls_cert, tls_key)  # fail before binding if the pair is bad
    if workers == 1:
        errors: list[BaseException] = []
        metrics = AdmissionMetrics()
        stop_metrics = start_metrics_listener(metrics, host, metrics_port) if metrics_port else None
        uv_config = DeadlineConfig(
            build_app(config, certificate, errors, metrics, policy_engine=policy_engine),
            ssl_context_factory=lambda _c, _d: certificate.context,
            **_uvicorn_options(host, port, config.admission.timeout_seconds),
        )
        server = uvicorn.Server(uv_config)
        try:
            server.run()
        except SystemExit as exit_:  # uvicorn exits when the app's startup fails
            if errors and isinstance(errors[0], GuardError):
                raise errors[0] from None
            raise InfrastructureError(
                f"the webhook could not start on {host}:{port} (see the log above)"
            ) from exit_
        finally:
            if stop_metrics is not None:
                stop_metrics()
        if not server.started:
            raise InfrastructureError(f"the webhook could not start on {host}:{port} (see the log above)")
        return
    os.environ[ENV_CERT] = str(tls_cert.resolve())
    os.environ[ENV_KEY] = str(tls_key.resolve())
    if config_path is not None:
        os.environ[ENV_CONFIG] = str(config_path.resolve())
    workers_config = _TcpConfig(
        "webhook.server:app_from_environment",
        factory=True,
        workers=workers,
        ssl_context_factory=context_from_environment,
        **_uvicorn_options(host, port, config.admission.timeout_seconds),
    )
    Multiprocess(workers_config, sockets=[workers_config.bind_socket()]).run()


def tcp_socket(sock: socket.socket) -> socket.socket:
    """The same socket with ``proto`` IPPROTO_TCP. asyncio sets TCP_NODELAY only on connections
    accepted from such a socket; a listener made with proto 0 (as uvicorn's ``bind_socket`` does)
    leaves Nagle on, and every response written in two parts waits ~40 ms for a delayed ACK."""
    if sock.proto == socket.IPPROTO_TCP:
        return sock
    return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())


class _TcpConfig(DeadlineConfig):
    def bind_socket(self) -> socket.socket:
        return tcp_socket(super().bind_socket())


class WebhookServer:
    """The webhook served over TLS from a background thread, on 127.0.0.1 and a free port.

    ``with WebhookServer(app, certificate) as server: server.url`` — stopped on exit.
    ``request_deadline_seconds``: a connection that does not finish a request within it is closed
    (``webhook.deadline``; ``guard serve`` uses the webhook's timeoutSeconds).
    """

    def __init__(
        self,
        app: ASGIApp,
        certificate: ReloadingCertificate,
        host: str = "127.0.0.1",
        *,
        request_deadline_seconds: float = DEFAULT_REQUEST_DEADLINE_SECONDS,
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.certificate = certificate
        config = DeadlineConfig(
            app,
            ssl_context_factory=lambda _c, _d: certificate.context,
            **_uvicorn_options(host, self.port, request_deadline_seconds),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="guard-webhook", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            # the event loop `guard serve` runs (uvloop where installed)
            with asyncio.Runner(loop_factory=self._server.config.get_loop_factory()) as runner:
                runner.run(self._server.serve(sockets=[self._sock]))
        except BaseException as err:  # reported by start()
            self._error = err

    def start(self, timeout: float = 30.0) -> WebhookServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise InfrastructureError(f"the webhook server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                raise InfrastructureError(f"the webhook server did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
