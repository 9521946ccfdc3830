"""The webhook step of ``guard demo``: ``guard serve`` on loopback over HTTPS (a child process, as
a user runs it: guard never imports the webhook package), sent sample workloads as the API server
would send them.

With Debian's ``docker-registry`` installed, the models live in a real registry on 127.0.0.1
(pushed, signed and attached with guard) and the webhook verifies them there. Without it the
rule points at an address where nothing listens and the demo shows every model denied, failing
closed (and says why).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml
from rich.markup import escape

if TYPE_CHECKING:
    from guard.demo import DemoContext


def write_loopback_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: ``(ca.pem, tls.crt, tls.key)``."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "guard demo CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "guard.guard-system.svc")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("guard.guard-system.svc")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "tls.crt", directory / "tls.key"
    ca_path.write_bytes(ca.public_bytes(pem))
    cert_path.write_bytes(leaf.public_bytes(pem))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


def _workloads(
    signed: str, pinned: str, unsigned: str, tampered: str
) -> list[tuple[str, dict[str, Any], bool]]:
    from guard.testing.admission import admission_review, pod  # noqa: PLC0415

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sentiment", "namespace": "team-a"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "sentiment"}},
                "spec": {"containers": [{"name": "server", "image": pinned}]},
            }
        },
    }
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "llm", "namespace": "team-a"},
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "huggingface"}, "storageUri": f"oci://{unsigned}"}
            }
        },
    }
    tampered_pod = pod(tampered, name="fine-tune")
    return [
        ("a Deployment serving the signed model, pinned by digest", admission_review(deployment), True),
        ("a Pod running the signed model by tag", admission_review(pod(signed, name="eval")), True),
        ("a Pod whose model was changed after signing", admission_review(tampered_pod), False),
        ("a KServe InferenceService with an unsigned oci:// model", admission_review(isvc), False),
        ("the same, as kubectl apply --dry-run=server", admission_review(isvc, dry_run=True), False),
    ]


@contextlib.contextmanager
def _registry(ctx: DemoContext) -> Iterator[tuple[dict[str, Any], str, str | None, str]]:
    """``(config, host, signed digest, label)``: a real registry with the demo's models when one
    can run here; otherwise an address where nothing listens, so the demo shows failing closed."""
    from guard.testing.admission_net import refused_address  # noqa: PLC0415
    from guard.testing.registry import RegistryServer, registry_available  # noqa: PLC0415

    reason = registry_available()
    if reason is None:
        from guard.testing.admission_registry import publish_models  # noqa: PLC0415

        with RegistryServer.start(ctx.workdir / "registry") as registry:
            models = publish_models(registry.host, ctx.workdir / "webhook-models", prefix="demo")
            yield (
                models.config(),
                registry.host,
                models.signed_digest,
                f"docker-registry on {registry.host}",
            )
        return
    ctx.console.print(
        f"[yellow]note:[/] {escape(reason)}: with no registry to verify against, every model is "
        "denied (guard fails closed); install it to see models verified"
    )
    ctx.extras.setdefault("not_shown", []).append(f"the webhook verifying a signed model ({reason})")
    host = refused_address()
    config = {
        "authorities": {"ci": {"kind": "key", "key": str(ctx.public_key)}},
        "rules": [{"name": "models", "artifacts": [f"{host}/demo/**"], "authorities": ["ci"]}],
    }
    yield config, host, None, f"{host} (nothing listens there)"


def _start_server(
    ctx: DemoContext, config: dict[str, Any], cert: Path, key: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """``guard serve`` as a user runs it, in a child process on 127.0.0.1."""
    config_path = ctx.workdir / "webhook-guard.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    argv = [
        "serve",
        "--config",
        str(config_path),
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    ctx.command(*argv)
    log = (ctx.workdir / "webhook.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
        [sys.executable, "-c", "from guard.cli import main; main()", *argv], stdout=log, stderr=log
    )
    return process, port


def _wait_ready(process: subprocess.Popen[bytes], client: httpx.Client, log: Path) -> None:
    from guard.demo import DemoFailed  # noqa: PLC0415

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoFailed(f"guard serve exited ({process.returncode}): {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if client.get("/readyz").status_code == 200:
                return
        time.sleep(0.1)
    raise DemoFailed("guard serve did not become ready within 60 s")


def step_webhook(ctx: DemoContext) -> None:
    """Start ``guard serve`` on 127.0.0.1 over HTTPS and send it sample workloads."""
    from guard.demo import DemoFailed  # noqa: PLC0415

    ctx.title("The admission webhook: sample workloads over HTTPS")
    ca, cert, key = write_loopback_tls(ctx.workdir / "webhook-tls")
    with _registry(ctx) as (config, host, digest, where):
        process, port = _start_server(ctx, config, cert, key)
        try:
            tls = ssl.create_default_context(cafile=str(ca))
            with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=tls, timeout=30) as client:
                _wait_ready(process, client, ctx.workdir / "webhook.log")
                ctx.console.print(
                    f"webhook ready on https://127.0.0.1:{port}, models in {where}", highlight=False
                )
                signed, unsigned, tampered = (
                    f"{host}/demo/{n}:v1" for n in ("signed", "unsigned", "tampered")
                )
                pinned = f"{host}/demo/signed@{digest}" if digest else signed
                for title, review, expect in _workloads(signed, pinned, unsigned, tampered):
                    body = client.post("/validate", json=review).json()["response"]
                    _show(ctx, title, body)
                    if body["allowed"] is not (expect and digest is not None):
                        raise DemoFailed(f"{title}: expected allowed={expect}, the webhook said {body}")
                metrics = client.get("/metrics").text
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    ctx.console.print()
    counts = [
        line.removeprefix("guard_verification_cache_total")
        for line in metrics.splitlines()
        if line.startswith("guard_verification_cache_total{") and not line.endswith(" 0.0")
    ]
    ctx.console.print(f"verification cache: {escape(', '.join(counts))}", highlight=False)
    decisions = [
        line
        for line in (ctx.workdir / "webhook.log").read_text().splitlines()
        if '"decision":"denied"' in line
    ]
    if decisions:
        shown = decisions[0] if len(decisions[0]) <= 400 else decisions[0][:397] + "..."
        ctx.console.print(
            f"a decision in the webhook's JSON log:\n[dim]{escape(shown)}[/]", highlight=False
        )


def _show(ctx: DemoContext, title: str, body: dict[str, Any]) -> None:
    ctx.console.print()
    ctx.console.print(f"[bold]{escape(title)}[/]", highlight=False)
    notes = body.get("auditAnnotations") or {}
    if body["allowed"]:
        verified = json.loads(notes.get("verified", "[]"))
        who = (
            ", ".join(f"{v['reference']} ({', '.join(v['signers'])})" for v in verified)
            or "nothing to verify"
        )
        ctx.ok(f"allowed; verified {who}")
    else:
        ctx.refused(f"denied: {body['status']['message']}")
    warnings = body.get("warnings") or []
    for warning in warnings[:2]:
        ctx.console.print(f"  [yellow]warning:[/] {escape(warning)}", highlight=False)
    if len(warnings) > 2:
        ctx.console.print(f"  [yellow]... and {len(warnings) - 2} more warnings[/]", highlight=False)
    if notes.get("dry-run"):
        ctx.console.print("  (dry run: nothing was created)", highlight=False)
