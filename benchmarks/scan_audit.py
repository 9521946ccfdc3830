# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast; loopback servers only
"""guard scan throughput and memory on generated clusters, against a floor measured in the same run.

Setup: Debian's docker-registry on 127.0.0.1 with --digests signed models (guard push + attach),
and a small Kubernetes API stand-in (its own process, stdlib HTTP on loopback) serving paged LISTs
(limit / continue) of --templates Deployments, their ReplicaSets and pods (--pods in all), each
Deployment running one of the models by tag, its pods reporting the verified digest as imageID.
The scan runs in a child process of its own (clean peak RSS), through the live source, the real
admission engine (OCI verification, attestation facts, the Rego library, embedded engine).

Figures per size (default 10,000 and 100,000 pods, 1,000 templates, 300 digests):
- floor: the same pages fetched and parsed, plus the policy library evaluated once per distinct
  template (the work no audit can skip), with the scan's GC thresholds (``gc_tuned``);
- cold: a first scan (empty verification cache): wall time, pods/s, peak RSS, LIST calls,
  registry requests, and the ratio of wall time to the floor;
- warm: a second scan in the same process with the engine's verification cache warm.

Goals (issue 10): 10k warm <= 1.5 x floor; peak RSS <= 512 MiB at 10k and <= 1 GiB at 100k;
registry requests = O(distinct digests). Prints figures only; never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

NAMESPACES = 20


# --- the API stand-in (a child process) ----------------------------------------------------------


def _objects(templates: int, pods: int, models: list[tuple[str, str]]) -> dict[str, list[dict[str, Any]]]:
    per = max(1, pods // templates)
    kinds: dict[str, list[dict[str, Any]]] = {"deployments": [], "replicasets": [], "pods": []}
    for t in range(templates):
        ref, digest = models[t % len(models)]
        ns = f"team-{t % NAMESPACES}"
        uid = f"d{t}"
        spec = {
            "containers": [
                {
                    "name": "model",
                    "image": ref,
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                    "env": [{"name": "TEMPLATE", "value": str(t)}],
                }
            ]
        }
        kinds["deployments"].append(
            {
                "metadata": {"name": f"app-{t}", "namespace": ns, "uid": uid},
                "spec": {"replicas": per, "template": {"spec": spec}},
            }
        )
        owner = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": f"app-{t}",
                "uid": uid,
                "controller": True,
            }
        ]
        kinds["replicasets"].append(
            {
                "metadata": {
                    "name": f"app-{t}-rs",
                    "namespace": ns,
                    "uid": f"{uid}-rs",
                    "ownerReferences": owner,
                },
                "spec": {"template": {"spec": spec}},
            }
        )
        rs_owner = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"app-{t}-rs",
                "uid": f"{uid}-rs",
                "controller": True,
            }
        ]
        repo = ref.rsplit(":", 1)[0]
        for p in range(per):
            kinds["pods"].append(
                {
                    "metadata": {
                        "name": f"app-{t}-rs-{p}",
                        "namespace": ns,
                        "uid": f"{uid}-p{p}",
                        "ownerReferences": rs_owner,
                    },
                    "spec": spec,
                    "status": {
                        "containerStatuses": [{"name": "model", "image": ref, "imageID": f"{repo}@{digest}"}]
                    },
                }
            )
    return kinds


def _api_server(port_out: Any, templates: int, pods: int, models: list[tuple[str, str]]) -> None:
    objects = _objects(templates, pods, models)
    stats = {"list_calls": 0}
    groups = {
        "/api/v1": ["pods:Pod", "replicationcontrollers:ReplicationController"],
        "/apis/apps/v1": [
            "deployments:Deployment",
            "replicasets:ReplicaSet",
            "statefulsets:StatefulSet",
            "daemonsets:DaemonSet",
        ],
        "/apis/batch/v1": ["jobs:Job", "cronjobs:CronJob"],
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            path = url.path
            if path == "/_stats":
                return self._send(200, stats)
            if path in groups:
                resources = [
                    {"name": e.split(":")[0], "kind": e.split(":")[1], "namespaced": True}
                    for e in groups[path]
                ]
                return self._send(200, {"kind": "APIResourceList", "resources": resources})
            if path in ("/apis/apps", "/apis/batch"):
                return self._send(
                    200, {"preferredVersion": {"version": "v1"}, "versions": [{"version": "v1"}]}
                )
            resource_name = path.rsplit("/", 1)[-1]
            for prefix, entries in groups.items():
                if path == f"{prefix}/{resource_name}" and any(
                    e.startswith(resource_name + ":") for e in entries
                ):
                    stats["list_calls"] += 1
                    items = objects.get(resource_name, [])
                    start = int(query.get("continue") or 0)
                    limit = int(query.get("limit") or len(items) or 1)
                    meta: dict[str, Any] = {"resourceVersion": "1"}
                    if start + limit < len(items):
                        meta["continue"] = str(start + limit)
                    return self._send(
                        200, {"kind": "List", "metadata": meta, "items": items[start : start + limit]}
                    )
            return self._send(404, {"kind": "Status", "code": 404, "message": "not served"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


# --- measurements (each in a child process) ------------------------------------------------------


def _list_calls(url: str) -> int:
    import httpx

    return int(httpx.get(f"{url}/_stats", timeout=30).json()["list_calls"])


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floor(url: str, config_path: str, out: Any) -> None:
    """Fetch and parse every page, then evaluate the library once per distinct template."""
    import asyncio

    import httpx

    from guard.config import load_config
    from guard.policy.engine import make_engine
    from guard.policy.input import Artifact, Signer, Verification, build_input_for_object
    from guard.scan.scanner import gc_tuned

    config = load_config(Path(config_path))
    with gc_tuned():  # the scan's own GC thresholds: the floor is measured the same way
        started = time.perf_counter()
        templates: dict[str, Any] = {}
        pods = 0
        with httpx.Client(base_url=url, timeout=60) as client:
            for path in ("/apis/apps/v1/deployments", "/apis/apps/v1/replicasets", "/api/v1/pods"):
                token = None
                while True:
                    params: dict[str, Any] = {"limit": 500}
                    if token:
                        params["continue"] = token
                    page = json.loads(client.get(path, params=params).content)
                    for item in page["items"]:
                        if path.endswith("deployments"):
                            templates[item["metadata"]["name"]] = item
                        elif path.endswith("pods"):
                            pods += 1
                    token = page["metadata"].get("continue")
                    if not token:
                        break
        parsed = time.perf_counter()

        async def evaluate() -> None:
            engine = make_engine(config.policy)
            try:
                for item in templates.values():
                    obj = {**item, "apiVersion": "apps/v1", "kind": "Deployment"}
                    spec = obj["spec"]["template"]["spec"]
                    image = spec["containers"][0]["image"]
                    art = Artifact(
                        ref=image,
                        source="container",
                        used_by=("model",),
                        verification=Verification(
                            status="verified", rule="models", signers=(Signer(method="key", identity="k"),)
                        ),
                        is_model=True,
                    )
                    await engine.evaluate(build_input_for_object(obj, spec, [art], config))
            finally:
                await engine.aclose()

        asyncio.run(evaluate())
        done = time.perf_counter()
    out.put(
        {
            "wall": done - started,
            "parse": parsed - started,
            "templates": len(templates),
            "pods": pods,
            "rss": _peak_rss_mib(),
        }
    )


def _scans(url: str, config_path: str, out: Any) -> None:
    """A cold scan, then a warm one with the same engine (verification cache warm)."""
    import asyncio

    from guard.admission.wiring import build_engine
    from guard.config import load_config
    from guard.oci.client import RegistryClient
    from guard.scan.scanner import run_scan, scan_engine_config
    from guard.scan.sources.live import KubeApi, LiveSource
    from guard.testing.kube import write_kubeconfig

    counter = {"n": 0}
    send = RegistryClient._send
    lock = threading.Lock()

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            counter["n"] += 1
        return send(self, *args, **kwargs)

    RegistryClient._send = counting  # type: ignore[method-assign]
    config = load_config(Path(config_path))
    kubeconfig = write_kubeconfig(Path(config_path).with_name("kubeconfig"), url)
    figures = []

    async def main() -> None:
        engine = await build_engine(scan_engine_config(config))
        try:
            for run in ("cold", "warm"):
                api = KubeApi(kubeconfig=kubeconfig, qps=1000)
                lists, registry = _list_calls(url), counter["n"]
                started = time.perf_counter()
                result = await run_scan(config, LiveSource(api), engine=engine)
                wall = time.perf_counter() - started
                figures.append(
                    {
                        "run": run,
                        "wall": wall,
                        "pods": result.summary.pods,
                        "workloads": result.summary.workloads,
                        "findings": result.summary.findings,
                        "statuses": result.summary.by_status,
                        "partial": result.scan.partial,
                        "list_calls": _list_calls(url) - lists,
                        "api_requests": api.requests,
                        "registry_requests": counter["n"] - registry,
                        "rss": _peak_rss_mib(),
                    }
                )
        finally:
            await engine.aclose()

    asyncio.run(main())
    out.put(figures)


def _child(target: Any, *args: Any) -> Any:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue))
    process.start()
    value = queue.get(timeout=3600)
    process.join()
    return value


def publish(host: str, workdir: Path, count: int) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    from guard.oci.push import push_model
    from guard.oci.referrers import attach, load_attachment
    from guard.oci.registry import RegistryAccess, RegistryStore
    from guard.signing import KeySigner, sign_model
    from guard.signing.keys import generate_keypair

    keys = generate_keypair(workdir / "keys", force=True)
    signer = KeySigner.from_file(keys.private_key)
    store = RegistryStore.open(host, "bench/models", RegistryAccess(), loopback=True)
    models = []
    for i in range(count):
        model = workdir / f"m{i}"
        model.mkdir(parents=True)
        (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "i": i}))
        (model / "model.safetensors").write_bytes(f"weights {i} ".encode() * 64)
        signature = workdir / f"m{i}.sig"
        sign_model(model, signer, signature_path=signature)
        pushed = push_model(store, model, f"v{i}")
        attach(store, pushed.descriptor, load_attachment("signature", signature))
        models.append((f"{host}/bench/models:v{i}", pushed.descriptor.digest))
    config = {
        "authorities": {"ci": {"kind": "key", "key": str(keys.public_key)}},
        "rules": [{"name": "models", "artifacts": [f"{host}/bench/**"], "authorities": ["ci"]}],
        "policy": {
            "requireSbom": False,
            "mutableTags": "warn",
            "enforcement": {"provenance": "warn", "tenancy": "warn"},
        },
    }
    return models, config


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", default="10000,100000", help="pod counts, comma separated")
    parser.add_argument("--templates", type=int, default=1000, help="distinct pod templates (Deployments)")
    parser.add_argument("--digests", type=int, default=300, help="distinct signed models in the registry")
    args = parser.parse_args()
    sizes = [int(p) for p in args.pods.split(",")]

    from guard.testing.registry import RegistryServer, registry_available

    reason = registry_available()
    if reason is not None:
        print(f"skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory(prefix="guard-scan-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with RegistryServer.start(tmp / "registry") as registry:
            t0 = time.perf_counter()
            models, config = publish(registry.host, tmp / "models", args.digests)
            print(f"published {len(models)} signed models in {time.perf_counter() - t0:.1f} s")
            config_path = tmp / "guard.yaml"
            config_path.write_text(json.dumps(config))
            for pods in sizes:
                ctx = multiprocessing.get_context("spawn")
                port_queue = ctx.Queue()
                server = ctx.Process(
                    target=_api_server, args=(port_queue, args.templates, pods, models), daemon=True
                )
                server.start()
                url = f"http://127.0.0.1:{port_queue.get(timeout=600)}"
                try:
                    floor = _child(_floor, url, str(config_path))
                    runs = _child(_scans, url, str(config_path))
                finally:
                    server.terminate()
                print(
                    f"\n{pods:,} pods, {floor['templates']:,} templates, {len(models)} digests  "
                    f"floor: {floor['wall']:.2f} s (parse {floor['parse']:.2f} s), "
                    f"peak RSS {floor['rss']:.0f} MiB"
                )
                for r in runs:
                    print(
                        f"  {r['run']:4}: {r['wall']:7.2f} s  {r['pods'] / r['wall']:9,.0f} pods/s  "
                        f"x{r['wall'] / floor['wall']:.2f} floor  peak RSS {r['rss']:.0f} MiB  "
                        f"LIST {r['list_calls']} (API requests {r['api_requests']})  "
                        f"registry requests {r['registry_requests']}  "
                        f"workloads {r['workloads']:,} findings {r['findings']:,} statuses {r['statuses']}"
                        + ("  PARTIAL" if r["partial"] else "")
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
