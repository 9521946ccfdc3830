"""The webhook section of ``guard demo``: ``guard serve`` on loopback over HTTPS (a child process,
as a user runs it), sent sample workloads as the API server would send them, verifying models in
a real registry or a local mirror (guard.demo.publish)."""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import yaml
from rich.markup import escape

from guard.demo.context import GUARD, DemoContext, DemoFailed
from guard.demo.publish import Registry, model_registry, publish
from guard.demo.tls import write_loopback_tls


def admission_review(obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    """An AdmissionReview v1 request for ``obj``, as the API server sends it."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    kind = str(obj["kind"])
    resource = {"Pod": "pods", "Deployment": "deployments"}.get(kind, kind.lower() + "s")
    request = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"]["namespace"],
        "operation": "CREATE",
        "userInfo": {"username": "alice@example.com", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": None,
        "dryRun": dry_run,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"containers": [{"name": "c0", "image": image}]},
    }


def _workloads(host: str, digest: str) -> list[tuple[str, dict[str, Any], bool]]:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sentiment", "namespace": "team-a"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "sentiment"}},
                "spec": {"containers": [{"name": "server", "image": f"{host}/demo/signed@{digest}"}]},
            }
        },
    }
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "llm", "namespace": "team-a"},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "huggingface"},
                    "storageUri": f"oci://{host}/demo/unsigned:v1",
                }
            }
        },
    }
    return [
        ("a Deployment serving the signed model, pinned by digest", admission_review(deployment), True),
        (
            "a Pod running the signed model by tag",
            admission_review(_pod("eval", f"{host}/demo/signed:v1")),
            True,
        ),
        (
            "a Pod whose model was changed after signing",
            admission_review(_pod("fine-tune", f"{host}/demo/tampered:v1")),
            False,
        ),
        ("a KServe InferenceService with an unsigned oci:// model", admission_review(isvc), False),
        ("the same, as kubectl apply --dry-run=server", admission_review(isvc, dry_run=True), False),
        (
            "a Pod whose model was never published",
            admission_review(_pod("ghost", f"{host}/demo/absent:v1")),
            False,
        ),
    ]


def _write_config(ctx: DemoContext, registry: Registry) -> str:
    config: dict[str, Any] = {
        "authorities": {"ci": {"kind": "key", "key": ctx.public_key}},
        "rules": [{"name": "models", "artifacts": [f"{registry.host}/demo/**"], "authorities": ["ci"]}],
        # a signed model without attestations is allowed with warnings (the attestation section
        # shows those); provenance and tenancy policies warn
        "policy": {
            "requireSbom": False,
            "mutableTags": "warn",
            "enforcement": {"provenance": "warn", "tenancy": "warn"},
        },
    }
    if registry.registries:
        config["registries"] = registry.registries
    name = "webhook-guard.yaml"
    ctx.path(name).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    ctx.say(f"  {name}:")
    for line in yaml.safe_dump(config, sort_keys=False).splitlines():
        ctx.console.print(f"    [dim]{escape(line)}[/]", highlight=False)
    return name


@contextlib.contextmanager
def _serve(ctx: DemoContext, config: str) -> Iterator[tuple[httpx.Client, str]]:
    """``guard serve`` in a child process on 127.0.0.1 (as echoed): a client trusting its CA, and
    the URL of its metrics (plain HTTP on a port of their own, never the admission port)."""
    ca, _, _ = write_loopback_tls(ctx.path("webhook-tls"))
    port, metrics_port = _free_port(), _free_port()
    while metrics_port == port:
        metrics_port = _free_port()
    argv = [
        "serve",
        "--config",
        config,
        "--tls-cert",
        "webhook-tls/tls.crt",
        "--tls-key",
        "webhook-tls/tls.key",
    ]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port)]
    ctx.console.print(f"[dim]$[/] guard {escape(shlex.join(argv))} > webhook.log 2>&1 &", highlight=False)
    with ctx.path("webhook.log").open("wb") as log:
        process = subprocess.Popen([*GUARD, *argv], cwd=ctx.workdir, stdout=log, stderr=log)  # noqa: S603
    try:
        tls = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=tls, timeout=30) as client:
            _wait_ready(ctx, process, client)
            ctx.ok(f"webhook ready on https://127.0.0.1:{port}")
            yield client, f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(ctx: DemoContext, process: subprocess.Popen[bytes], client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = ctx.path("webhook.log").read_text(errors="replace")[-2000:]
            raise DemoFailed(f"guard serve exited ({process.returncode}): {log}")
        with contextlib.suppress(httpx.TransportError):
            if client.get("/readyz").status_code == 200:
                return
        time.sleep(0.1)
    raise DemoFailed("guard serve did not become ready within 60 s")


def step_webhook(ctx: DemoContext) -> None:
    """Publish models, start ``guard serve`` on 127.0.0.1 over HTTPS and send it workloads."""
    ctx.title("The admission webhook: sample workloads over HTTPS")
    with model_registry(ctx) as registry:
        digest = publish(ctx, registry)
        config = _write_config(ctx, registry)
        with _serve(ctx, config) as (client, metrics_url):
            ctx.say(f"models in {registry.label}")
            for title, review, expect in _workloads(registry.host, digest):
                body = client.post("/validate", json=review).json()["response"]
                _show(ctx, title, body)
                if body["allowed"] is not expect:
                    raise DemoFailed(f"{title}: expected allowed={expect}, the webhook said {body}")
            answer = httpx.get(metrics_url, timeout=30)
            if answer.status_code != 200:
                raise DemoFailed(f"GET {metrics_url} answered {answer.status_code}: {answer.text[:200]}")
    _summary(ctx, answer.text)


def _summary(ctx: DemoContext, metrics: str) -> None:
    ctx.console.print()
    counts = [
        line.removeprefix("guard_verification_cache_total")
        for line in metrics.splitlines()
        if line.startswith("guard_verification_cache_total{") and not line.endswith(" 0.0")
    ]
    if not counts:  # the models above were verified: their lookups were counted
        raise DemoFailed("the webhook's metrics count no verification cache lookup")
    ctx.say(f"verification cache: {', '.join(counts)}")
    log = ctx.path("webhook.log").read_text(errors="replace").splitlines()
    decisions = [line for line in log if '"decision":"denied"' in line]
    if decisions:
        shown = decisions[0] if len(decisions[0]) <= 400 else decisions[0][:397] + "..."
        ctx.console.print(
            f"a decision in webhook.log (JSON lines):\n[dim]{escape(shown)}[/]", highlight=False
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
        ctx.say("  (dry run: nothing was created)")
