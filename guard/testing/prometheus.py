"""A real Prometheus for tests (Debian's ``prometheus`` / ``promtool``): started on 127.0.0.1 at a
free port with a temporary storage directory, stopped by its PID; history backfilled with
``promtool tsdb create-blocks-from openmetrics``; a small exporter serving metric lines.

Usable outside guard's own tests::

    with MetricsExporter() as exporter, PrometheusServer(tmp, targets=[exporter.target]) as prom:
        exporter.body = 'DCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-1"} 700\\n'
        ...  # query prom.url
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import httpx

from guard.testing.processes import stop_process

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"


def available() -> bool:
    return shutil.which(PROMETHEUS) is not None and shutil.which(PROMTOOL) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _labels(labels: Mapping[str, str]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def line(name: str, labels: Mapping[str, str], value: float, timestamp: float | None = None) -> str:
    """One exposition line (with an OpenMetrics timestamp in seconds when given)."""
    ts = "" if timestamp is None else f" {timestamp:.3f}"
    return f"{name}{_labels(labels)} {value!r}{ts}"


class OpenMetrics:
    """History for ``promtool tsdb create-blocks-from openmetrics``: series are kept per metric
    family (contiguous, as the format wants) and each series' points in time order."""

    def __init__(self) -> None:
        self._families: dict[str, list[str]] = {}

    def series(self, name: str, labels: Mapping[str, str], points: Iterable[tuple[float, float]]) -> None:
        lines = self._families.setdefault(name, [])
        lines.extend(line(name, labels, value, ts) for ts, value in points)

    def text(self) -> str:
        out = []
        for lines in self._families.values():
            out.extend(lines)
        out.append("# EOF")
        return "\n".join(out) + "\n"


def backfill(history: OpenMetrics | str, storage: Path) -> None:
    """Write the history into ``storage`` as TSDB blocks (one block per 31 days at most)."""
    storage.mkdir(parents=True, exist_ok=True)
    source = storage.parent / f"{storage.name}-backfill.om"
    source.write_text(history if isinstance(history, str) else history.text(), encoding="utf-8")
    subprocess.run(  # noqa: S603 (a fixed binary and arguments)
        [
            PROMTOOL,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=744h",
            str(source),
            str(storage),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    source.unlink()


class _Handler(BaseHTTPRequestHandler):
    server: _ExporterServer

    def do_GET(self) -> None:
        body = self.server.exporter.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _ExporterServer(ThreadingHTTPServer):
    exporter: MetricsExporter


class MetricsExporter:
    """An HTTP server on 127.0.0.1 serving ``body`` (exposition text) at any path, or what
    ``body_fn`` returns at each scrape when it is set (counters that grow with time)."""

    def __init__(self, body_fn: Callable[[], str] | None = None) -> None:
        self.body = ""
        self.body_fn = body_fn
        self._server = _ExporterServer(("127.0.0.1", 0), _Handler)
        self._server.exporter = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def render(self) -> str:
        return self.body_fn() if self.body_fn is not None else self.body

    @property
    def target(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def __enter__(self) -> MetricsExporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class PrometheusServer:
    """``prometheus`` on 127.0.0.1 with its own storage and config, long retention (history
    backfilled into ``storage`` before start stays), scraping ``targets`` every
    ``scrape_interval`` seconds."""

    def __init__(
        self,
        workdir: Path,
        *,
        targets: Sequence[str] = (),
        scrape_interval: float = 1.0,
        storage: Path | None = None,
        web_config: str | None = None,
        https: bool = False,
        ca_file: Path | None = None,
        auth: tuple[str, str] | None = None,
        target_labels: Mapping[str, str] | None = None,
        honor_labels: bool = False,
    ) -> None:
        """``web_config``: Prometheus' ``--web.config.file`` content (``tls_server_config``,
        ``basic_auth_users``); ``https``, ``ca_file`` and ``auth`` are what the readiness probe
        then needs. ``target_labels``: labels of the targets (as a ServiceMonitor gives them
        ``namespace`` and ``pod``); a scraped label of the same name is renamed ``exported_<name>``
        unless ``honor_labels``."""
        self.target_labels = dict(target_labels or {})
        self.honor_labels = honor_labels
        self.web_config = web_config
        self._verify: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        )
        self._auth = auth
        self.workdir = workdir
        self.storage = storage or workdir / "data"
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.url = f"{'https' if https else 'http'}://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        path = self.workdir / "prometheus.yml"
        interval = f"{int(self.scrape_interval * 1000)}ms"
        jobs = ""
        if self.targets:
            targets = ", ".join(f"'{t}'" for t in self.targets)
            labels = "".join(f"          {k}: '{v}'\n" for k, v in self.target_labels.items())
            jobs = (
                "scrape_configs:\n  - job_name: exporter\n"
                f"    honor_labels: {'true' if self.honor_labels else 'false'}\n    static_configs:\n"
                f"      - targets: [{targets}]\n" + (f"        labels:\n{labels}" if labels else "")
            )
        path.write_text(
            f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n{jobs}",
            encoding="utf-8",
        )
        return path

    def _web_config_args(self) -> list[str]:
        if self.web_config is None:
            return []
        path = self.workdir / "web.yml"
        path.write_text(self.web_config, encoding="utf-8")
        return [f"--web.config.file={path}"]

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(  # noqa: S603 (a fixed binary and arguments)
            [
                PROMETHEUS,
                f"--config.file={self._config()}",
                f"--storage.tsdb.path={self.storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=400d",
                "--web.enable-lifecycle",
                *self._web_config_args(),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-2000:]}"
                )
            try:
                ready = httpx.get(f"{self.url}/-/ready", timeout=1, verify=self._verify, auth=self._auth)
                if ready.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("prometheus did not become ready in 60 s")

    def wait_for_samples(self, query: str, count: int, timeout: float = 90.0) -> None:
        """Wait until the instant ``query`` (e.g. ``count_over_time(up[20s])``) returns at least
        ``count`` for every series. A slow answer on a loaded machine is retried, not fatal."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                body = httpx.get(
                    f"{self.url}/api/v1/query",
                    params={"query": query},
                    timeout=10,
                    verify=self._verify,
                    auth=self._auth,
                ).json()
            except (httpx.HTTPError, ValueError):
                body = {}
            result = body.get("data", {}).get("result", []) if isinstance(body, dict) else []
            if result and min(float(r["value"][1]) for r in result) >= count:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{query} did not reach {count} in {timeout} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process(proc)

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
