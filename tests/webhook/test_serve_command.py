"""`guard serve` as a user runs it: a subprocess over TLS, then SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.cli import run
from guard.testing.admission import admission_review, pod

GUARD = Path(sys.executable).with_name("guard")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("guard serve did not become ready")


@pytest.mark.parametrize("workers", [1, 2])
def test_guard_serve_answers_over_tls_and_stops_on_sigterm(
    workers: int, tls_files: tuple[Path, Path], client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    config = tmp_path / "guard.yaml"
    config.write_text("admission:\n  exempt_namespaces: [kube-system, guard-system]\n")
    port = _free_port()
    metrics_port = _free_port() if workers == 1 else 0  # the metrics listener needs one worker
    cert, key = tls_files
    process = subprocess.Popen(
        [
            str(GUARD),
            "serve",
            "--config",
            str(config),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--metrics-port",
            str(metrics_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=client_context, timeout=30) as client:
            _wait_ready(client, process)
            response = client.post("/validate", json=admission_review(pod("docker.io/library/busybox:1.36")))
            assert response.status_code == 200
            answer = response.json()["response"]
            assert answer["allowed"] is False
            assert "no trust rule covers docker.io/library/busybox:1.36" in answer["status"]["message"]
            exempt = client.post(
                "/validate", json=admission_review(pod("busybox"), namespace="guard-system")
            ).json()["response"]
            assert exempt["allowed"] is True
            # the admission port never serves /metrics; the metrics port does, in plain HTTP
            assert client.get("/metrics").status_code == 404
            if metrics_port:
                metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
                counted = 'guard_admission_request_duration_seconds_count{decision="denied",kind="Pod"} 1.0'
                assert counted in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    logs = stderr.decode()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM)
    assert process.returncode in (0, -signal.SIGTERM), logs
    assert "Application shutdown complete" in logs
    assert '"decision":"denied"' in logs and '"uid":' in logs  # JSON logs with the request uid
    assert "busybox" in logs and '"containers"' not in logs  # references, never whole objects


def test_guard_serve_refuses_bad_tls_material(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, _ = tls_files
    assert run(["serve", "--tls-cert", str(cert), "--tls-key", str(tmp_path / "missing.pem")]) == 2
    wrong = tmp_path / "wrong.pem"
    wrong.write_text("not a key")
    assert run(["serve", "--tls-cert", str(cert), "--tls-key", str(wrong), "--port", "1"]) == 2
    assert run(["serve", "--tls-cert", str(cert), "--tls-key", str(cert), "--workers", "0"]) == 2
    two_workers = ["--workers", "2", "--metrics-port", "9090"]
    assert run(["serve", "--tls-cert", str(cert), "--tls-key", str(cert), *two_workers]) == 2
    assert run(["serve", "--tls-cert", str(cert), "--tls-key", str(cert), "--metrics-port", "8443"]) == 2


def test_guard_serve_reports_a_bad_trust_root_as_a_config_error(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = tmp_path / "guard.yaml"
    config.write_text(f"authorities:\n  ci: {{kind: key, key: {tmp_path / 'missing.pub'}}}\n")
    cert, key = tls_files
    result = subprocess.run(
        [
            str(GUARD),
            "serve",
            "--config",
            str(config),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--host",
            "127.0.0.1",
            "--port",
            str(_free_port()),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert "cannot load the trust roots" in stderr
    assert "authorities.ci" in stderr and "missing.pub" in stderr
    # checked before the server starts: one line, no uvicorn start-up log, no traceback
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr and "lifespan" not in stderr.lower()


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks below must fail before `guard serve` hands off to the server."""

    def never(_name: str) -> None:
        raise AssertionError("the server was started")

    monkeypatch.setattr("guard.commands.serve._transport", never)


def _refused(
    config_text: str, tmp_path: Path, tls_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> str:
    """`guard serve` with this config exits 2 before the server starts; what it printed."""
    config = tmp_path / "guard.yaml"
    config.write_text(config_text)
    cert, key = tls_files
    argv = ["serve", "--config", str(config), "--tls-cert", str(cert), "--tls-key", str(key)]
    assert run([*argv, "--host", "127.0.0.1", "--port", "1"]) == 2  # port 1: never reached
    return capsys.readouterr().err


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize("kind", ["key", "certificate", "keyless"])
@pytest.mark.parametrize("problem", ["missing", "garbage"])
def test_guard_serve_checks_every_authority_before_starting(
    kind: str,
    problem: str,
    tmp_path: Path,
    tls_files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "trust-file"
    if problem == "garbage":
        path.write_text("not a PEM file, not JSON\n")
    authority = {
        "key": f"{{kind: key, key: {path}}}",
        "certificate": f"{{kind: certificate, roots: {path}}}",
        "keyless": "{kind: keyless, issuer: https://issuer, subject: me@example.com, "
        f"trust_config: {path}}}",
    }[kind]
    err = _refused(f"authorities:\n  a1: {authority}\n", tmp_path, tls_files, capsys)
    assert "authorities.a1" in err and str(path) in err, err


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    ("field", "problem", "expected"),
    [
        ("caFile", "missing", "expected a PEM file of the CAs to trust, found no file there"),
        ("caFile", "directory", "expected a PEM file of the CAs to trust, found a directory"),
        ("caFile", "garbage", "expected PEM certificates of the CAs to trust, found no certificate"),
        ("dockerConfig", "missing", "expected a docker config.json file, found no file there"),
        ("dockerConfig", "garbage", "expected a docker config.json (a JSON object), found no JSON"),
    ],
)
def test_guard_serve_checks_the_registry_files_before_starting(
    field: str,
    problem: str,
    expected: str,
    tmp_path: Path,
    tls_files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # without them every registry request would fail as if the registry were down, which a
    # fail-open rule lets through: a mistake in the setup is said at once instead
    path = tmp_path / "registry-file"
    if problem == "directory":
        path.mkdir()
    elif problem == "garbage":
        path.write_text("not a PEM file\n")
    err = _refused(f"admission:\n  registry: {{{field}: {path}}}\n", tmp_path, tls_files, capsys)
    assert "admission.registry" in err and str(path) in err and expected in err, err


@pytest.mark.usefixtures("no_server")
def test_guard_serve_checks_the_policy_library_before_starting(
    tmp_path: Path, tls_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = "policy:\n  enforcement:\n    gpu.fitt: deny\n"
    assert "gpu.fitt" in _refused(config, tmp_path, tls_files, capsys)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("999.1.1.1", "--host 999.1.1.1: not an address or resolvable name"),
        ("a..b", "--host a..b: not an address or resolvable name"),
        ("192.0.2.1", "--host 192.0.2.1: not an address of this machine"),  # TEST-NET-1
        ("", "--host: expected an address or host name, found an empty string"),
    ],
)
@pytest.mark.usefixtures("no_server")
def test_guard_serve_refuses_a_host_it_cannot_listen_on(
    host: str, expected: str, tls_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = tls_files
    assert run(["serve", "--tls-cert", str(cert), "--tls-key", str(key), "--host", host, "--port", "1"]) == 2
    assert expected in capsys.readouterr().err


_EVIL_TRANSPORT = """
import guard.commands.serve as serve
from webhook.server import serve as webhook_serve
found = serve._transport("https")
print("webhook" if found is webhook_serve else f"other: {found.__module__}")
"""


def test_the_transport_is_guard_s_own_not_one_another_distribution_names(tmp_path: Path) -> None:
    # a package installed beside guard that names an "https" transport would serve every
    # admission of the cluster; it is first on the path here, where it would have won
    (tmp_path / "evilserve.py").write_text("def serve(*args, **kwargs):\n    raise SystemExit('evil')\n")
    info = tmp_path / "evilserve-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evilserve\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[guard.transports]\nhttps = evilserve:serve\n")
    done = subprocess.run(
        [sys.executable, "-c", _EVIL_TRANSPORT],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,  # not the checkout, whose own metadata would come first on the path
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "webhook", done.stderr


def test_the_webhook_uses_the_config_and_policy_engine_the_check_made(
    tmp_path: Path, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the config check loads the config and builds the policy engine (~20 ms): the webhook takes
    # them as they are rather than doing it again
    import guard.policy.engine as engine_module
    from guard.config import GuardConfig
    from guard.policy.embedded import EmbeddedEngine

    made: list[object] = []
    make = engine_module.make_engine

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(make(*args, **kwargs))
        return made[-1]

    handed: dict[str, Any] = {}

    def transport(_name: str) -> Any:
        return lambda *args, **kwargs: handed.update(kwargs)

    monkeypatch.setattr(engine_module, "make_engine", counted)
    monkeypatch.setattr("guard.commands.serve._transport", transport)
    config = tmp_path / "guard.yaml"
    config.write_text("policy: {requireSbom: false}\n")
    cert, key = tls_files
    argv = ["serve", "--config", str(config), "--tls-cert", str(cert), "--tls-key", str(key)]
    assert run([*argv, "--host", "127.0.0.1", "--port", "1"]) == 0
    assert len(made) == 1 and isinstance(made[0], EmbeddedEngine)
    assert handed["policy_engine"] is made[0]
    assert isinstance(handed["loaded"], GuardConfig) and handed["loaded"].policy.require_sbom is False


def test_the_engine_loader_uses_a_policy_engine_made_already_once(tmp_path: Path) -> None:
    import asyncio

    from guard.admission.metrics import AdmissionMetrics
    from guard.config import GuardConfig
    from guard.policy.engine import make_engine
    from webhook.server import engine_loader

    config = GuardConfig()
    prepared = make_engine(config.policy)
    load = engine_loader(config, AdmissionMetrics(), prepared)

    async def two_loads() -> list[object]:
        engines = []
        for _ in range(2):  # a second load (a new lifespan) makes its own
            engine = await load()
            engines.append(engine._policy._engine)  # type: ignore[attr-defined]
            await engine.aclose()
        return engines

    first, second = asyncio.run(two_loads())
    assert first is prepared
    assert second is not prepared
