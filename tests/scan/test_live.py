"""The live source against kmock's Kubernetes API emulator: paged LISTs, a 410 mid-list, a 403
on one kind, nothing listable, an unreachable server, a kubeconfig that does not load, and the
in-cluster reports written by server-side apply."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from guard.cli import run
from guard.scan.sources.live import RateLimiter
from guard.testing.admission_net import refused_address
from guard.testing.kube import Pager, expired_status, forbidden_status, write_kubeconfig

NS = "team-a"
IMAGE = "registry.example/app:1.0"


def deployment(name: str, namespace: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": IMAGE}]}}},
    }


def replica_set(deploy: dict[str, Any]) -> dict[str, Any]:
    meta = deploy["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-rs",
            "namespace": meta["namespace"],
            "uid": f"{meta['uid']}-rs",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": deploy["spec"],
    }


def pods_of(rs: dict[str, Any], count: int) -> list[dict[str, Any]]:
    meta = rs["metadata"]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{i}",
                "namespace": meta["namespace"],
                "uid": f"{meta['uid']}-pod-{i}",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"containers": [{"name": "app", "image": IMAGE}]},
        }
        for i in range(count)
    ]


def declare(kmock: Any) -> None:
    for path, kind in {
        "v1/pods": "Pod",
        "v1/replicationcontrollers": "ReplicationController",
        "apps/v1/deployments": "Deployment",
        "apps/v1/replicasets": "ReplicaSet",
        "apps/v1/statefulsets": "StatefulSet",
        "apps/v1/daemonsets": "DaemonSet",
        "batch/v1/jobs": "Job",
        "batch/v1/cronjobs": "CronJob",
    }.items():
        kmock.resources[path] = {"kind": kind, "namespaced": True}


def serve_lists(kmock: Any, objects: list[dict[str, Any]]) -> dict[str, Pager]:
    """Every listed kind served by a pager (empty lists for kinds without objects)."""
    routes = {
        "Pod": "/api/v1/pods",
        "ReplicationController": "/api/v1/replicationcontrollers",
        "Deployment": "/apis/apps/v1/deployments",
        "ReplicaSet": "/apis/apps/v1/replicasets",
        "StatefulSet": "/apis/apps/v1/statefulsets",
        "DaemonSet": "/apis/apps/v1/daemonsets",
        "Job": "/apis/batch/v1/jobs",
        "CronJob": "/apis/batch/v1/cronjobs",
    }
    pagers = {}
    for kind, path in routes.items():
        pager = Pager(kind, [o for o in objects if o["kind"] == kind])
        pagers[kind] = pager
        kmock[f"get {path}"] << pager
    return pagers


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "guard.yaml"
    path.write_text("version: 1\nunmatched_artifacts: warn\n")
    return path


async def scan(tmp_path: Path, kmock_url: str, *args: str) -> tuple[int, dict[str, Any] | None]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kmock_url)
    out = tmp_path / "result.json"
    argv = [
        "scan",
        "--config",
        str(config_file(tmp_path)),
        "--kubeconfig",
        str(kubeconfig),
        "-o",
        str(out),
        *args,
    ]
    code = await asyncio.to_thread(run, argv)  # the CLI blocks; kmock serves on this loop
    return code, json.loads(out.read_text()) if out.exists() else None


def listing(result: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(k for k in result["scan"]["sources"][0]["listed"] if k["kind"] == kind)


async def test_paged_lists_fold_pods_into_their_deployment(kmock: Any, tmp_path: Path) -> None:
    declare(kmock)
    deploy = deployment("web")
    rs = replica_set(deploy)
    pods = pods_of(rs, 1200)
    pagers = serve_lists(kmock, [deploy, rs, *pods])
    code, result = await scan(tmp_path, str(kmock.url), "--allow-partial", "--fail-on", "critical")
    assert result is not None
    assert code == 0, result["scan"]["partialReasons"]
    assert [r[0] for r in pagers["Pod"].requests] == [500, 500, 500]  # limit on every page
    assert pagers["Pod"].requests[1][1] == Pager.token(500)
    assert listing(result, "Pod") == {
        "apiVersion": "v1",
        "kind": "Pod",
        "objects": 1200,
        "listCalls": 3,
        "restarts": 0,
        "resourceVersion": "1000",
    }
    [workload] = result["workloads"]
    assert (workload["kind"], workload["name"], workload["replicas"]) == ("Deployment", "web", 1200)
    assert [o["kind"] for o in workload["ownerChain"]] == ["Deployment", "ReplicaSet"]
    assert result["summary"]["pods"] == 1200


async def test_410_restarts_the_list_without_counting_twice(kmock: Any, tmp_path: Path) -> None:
    declare(kmock)
    deploy = deployment("web")
    rs = replica_set(deploy)
    pods = pods_of(rs, 1100)
    kmock[f"get /api/v1/pods?continue={Pager.token(500)}"][:1] << 410 << expired_status()
    pagers = serve_lists(kmock, [deploy, rs, *pods])
    code, result = await scan(tmp_path, str(kmock.url), "--fail-on", "critical")
    assert result is not None and code == 0
    assert listing(result, "Pod")["restarts"] == 1
    assert listing(result, "Pod")["listCalls"] == 5  # 2 before the 410 (which counts), 3 after
    assert result["scan"]["listRestarts"] == 1
    assert result["workloads"][0]["replicas"] == 1100  # not 1600
    assert len(pagers["Pod"].requests) == 4  # the 410 was answered by the scripted reaction


async def test_403_on_one_kind_is_not_assessed_with_the_missing_rule(kmock: Any, tmp_path: Path) -> None:
    declare(kmock)
    deploy = deployment("web")
    rs = replica_set(deploy)
    kmock["get /apis/apps/v1/deployments"] << 403 << forbidden_status("deployments", "apps")
    serve_lists(kmock, [rs, *pods_of(rs, 3)])
    code, result = await scan(tmp_path, str(kmock.url))
    assert result is not None
    assert code == 3  # partial: an audit that could not look says so
    [missing] = [n for n in result["scan"]["notAssessed"] if n["kind"] == "Deployment"]
    assert missing["reason"] == "forbidden"
    assert missing["missingRule"] == {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}
    assert result["scan"]["partial"] is True
    # the pods still resolve, to the ReplicaSet (the top owner that could be listed)
    [workload] = result["workloads"]
    assert (workload["kind"], workload["replicas"]) == ("ReplicaSet", 3)
    code, _ = await scan(tmp_path, str(kmock.url), "--allow-partial", "--fail-on", "critical")
    assert code == 0


async def test_nothing_listable_fails_with_exit_3(
    kmock: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    declare(kmock)
    kmock["get"] << 403 << forbidden_status("everything")
    code, result = await scan(tmp_path, str(kmock.url))
    assert code == 3 and result is None
    assert "nothing could be listed" in capsys.readouterr().err


async def test_unreachable_server_is_exit_3_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = await scan(tmp_path, f"http://{refused_address()}")
    err = capsys.readouterr().err
    assert code == 3 and result is None
    assert "could not be reached" in err and "Traceback" not in err


def test_kubeconfig_that_does_not_parse_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("clusters: [unclosed\n")
    code = run(["scan", "--config", str(config_file(tmp_path)), "--kubeconfig", str(bad)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "kubeconfig" in err and "Traceback" not in err


async def test_namespaces_are_listed_one_by_one(kmock: Any, tmp_path: Path) -> None:
    declare(kmock)
    deploy = deployment("web", "team-b")
    kmock["get /apis/apps/v1/namespaces/team-b/deployments"] << Pager("Deployment", [deploy])
    kmock["get /apis/apps/v1/deployments"] << 500 << {"message": "a cluster-wide list was not expected"}
    serve_lists(kmock, [])
    code, result = await scan(tmp_path, str(kmock.url), "--namespace", "team-b", "--fail-on", "critical")
    assert result is not None
    assert code == 0, result["scan"]["partialReasons"]
    assert [w["name"] for w in result["workloads"]] == ["web"]
    assert result["scan"]["namespaces"] == ["team-b"]


async def test_write_reports_applies_one_report_per_namespace(kmock: Any, tmp_path: Path) -> None:
    declare(kmock)
    applied: list[Any] = []

    def apply(request: Any) -> dict[str, Any]:
        applied.append(request)
        return {"kind": "Report"}

    kmock["patch"] << apply
    # a real API server creates on apply; kmock's emulator patches only objects it holds
    kmock.resources["openreports.io/v1alpha1/reports"] = {"kind": "Report", "namespaced": True}
    for ns in ("team-a", "team-b"):
        kmock.objects["openreports.io/v1alpha1/reports", ns, "guard-scan"] = {
            "metadata": {"name": "guard-scan"}
        }
    a, b = deployment("web", "team-a"), deployment("api", "team-b")
    serve_lists(kmock, [a, b])
    code, result = await scan(
        tmp_path, str(kmock.url), "--write-reports", "openreports", "--fail-on", "critical"
    )
    assert result is not None and code == 0
    paths = sorted(str(r.url.path) for r in applied)
    assert paths == [
        "/apis/openreports.io/v1alpha1/namespaces/team-a/reports/guard-scan",
        "/apis/openreports.io/v1alpha1/namespaces/team-b/reports/guard-scan",
    ]
    request = applied[0]
    assert request.headers["Content-Type"] == "application/apply-patch+yaml"
    assert request.params["fieldManager"] == "guard" and request.params["force"] == "true"
    body = json.loads(request.data if isinstance(request.data, (bytes, str)) else json.dumps(request.data))
    assert body["metadata"]["labels"]["guard.cnai.dev/scan-id"] == result["scan"]["id"]
    assert body["summary"]["warn"] >= 1  # the unmatched image (warn) and the mutable tag


def test_rate_limiter_allows_a_burst_then_holds_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(20, 40, clock=lambda: now[0], sleep=sleep)
    for _ in range(40):
        limiter.acquire()
    assert slept == []  # the burst
    for _ in range(20):
        limiter.acquire()
    assert sum(slept) == pytest.approx(1.0, rel=0.01)  # 20 more at 20/s: one second


def test_in_cluster_outside_a_cluster_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert run(["scan", "--config", str(config_file(tmp_path)), "--in-cluster"]) == 2
    err = capsys.readouterr().err
    assert "in-cluster service account" in err and "Traceback" not in err
