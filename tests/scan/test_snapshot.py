"""guard scan on exported snapshots: owner resolution, one evaluation per workload whatever the
replicas, bad input, exit codes, stable fingerprints and first-seen, shards and merge, reports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from guard.admission.pipeline import AdmissionEngine
from guard.cli import run
from guard.config import parse_config
from guard.scan.merge import merge_results
from guard.scan.reports import build_reports
from guard.scan.result import ScanResult, generate_schema
from guard.scan.scanner import ScanOptions, run_scan
from guard.scan.sources.snapshot import SnapshotSource
from guard.scan.targets import shard_of
from guard.testing.links import plant_link

IMAGE = "registry.example/app:1.0"


def deploy(name: str, ns: str = "team-a", image: str = IMAGE, replicas: int = 2) -> list[dict[str, Any]]:
    uid = f"{ns}-{name}"
    rs_owner = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": True}]
    pod_owner = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": f"{name}-rs",
            "uid": f"{uid}-rs",
            "controller": True,
        }
    ]
    spec = {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "uid": uid},
            "spec": spec,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-rs",
                "namespace": ns,
                "uid": f"{uid}-rs",
                "ownerReferences": rs_owner,
            },
            "spec": spec,
        },
    ]
    objects += [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-rs-{i}",
                "namespace": ns,
                "uid": f"{uid}-p{i}",
                "ownerReferences": pod_owner,
            },
            "spec": {"containers": [{"name": "app", "image": image}]},
        }
        for i in range(replicas)
    ]
    return objects


def write(tmp_path: Path, objects: list[dict[str, Any]], name: str = "snap.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    return path


def config_path(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "guard.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "unmatchedArtifacts": "warn", **extra}))
    return path


def scan(tmp_path: Path, objects: list[dict[str, Any]], **options: Any) -> ScanResult:
    config = parse_config({"version": 1, "unmatchedArtifacts": "warn"})
    return asyncio.run(run_scan(config, SnapshotSource([write(tmp_path, objects)]), ScanOptions(**options)))


def test_pods_fold_into_their_top_owner_and_the_template_is_evaluated_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = AdmissionEngine.evaluate_object

    async def counting(self: AdmissionEngine, request: Any, **kw: Any) -> Any:
        calls.append(request.name)
        assert request.operation == "AUDIT"
        return await original(self, request, **kw)

    monkeypatch.setattr(AdmissionEngine, "evaluate_object", counting)
    result = scan(tmp_path, deploy("web", replicas=300))
    assert calls == ["web"]  # 300 pods, one evaluation
    [w] = result.workloads
    assert (w.kind, w.name, w.replicas, len(w.pod_names)) == ("Deployment", "web", 300, 300)
    assert [o.kind for o in w.owner_chain] == ["Deployment", "ReplicaSet"]
    assert {e.policy for e in w.evaluations} >= {"supply_chain.signature", "supply_chain.mutable_tags"}
    assert result.summary.pods == 300
    jsonschema.Draft202012Validator(generate_schema()).validate(json.loads(result.to_json()))


def test_pods_of_an_owner_that_was_not_listed_fold_into_that_owner(tmp_path: Path) -> None:
    owner = [
        {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "name": "llm-00001",
            "uid": "rev",
            "controller": True,
        }
    ]
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"llm-{i}", "namespace": "team-a", "uid": f"p{i}", "ownerReferences": owner},
            "spec": {"containers": [{"name": "app", "image": IMAGE}]},
        }
        for i in range(5)
    ]
    bare = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "debug", "namespace": "team-a", "uid": "b"},
        "spec": {"containers": [{"name": "sh", "image": "busybox:1"}]},
    }
    result = scan(tmp_path, [*pods, bare])
    kinds = {(w.kind, w.name, w.replicas) for w in result.workloads}
    assert kinds == {("Revision", "llm-00001", 5), ("Pod", "debug", 1)}


def test_exempt_namespaces_are_reported_not_evaluated(tmp_path: Path) -> None:
    result = scan(tmp_path, deploy("dns", ns="kube-system"))
    [w] = result.workloads
    assert w.exempt and not w.evaluations and not result.findings


def test_unknown_kinds_are_not_assessed_and_inert_kinds_do_not_make_it_partial(tmp_path: Path) -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "team-a"}}
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "team-a"},
    }
    only_svc = scan(tmp_path, [*deploy("web"), svc])
    assert not only_svc.scan.partial
    assert [(n.kind, n.reason, n.objects) for n in only_svc.scan.not_assessed] == [
        ("Service", "not-a-workload", 1)
    ]
    with_widget = scan(tmp_path, [*deploy("web"), svc, widget])
    assert with_widget.scan.partial
    assert ("Widget", "unknown-kind") in [(n.kind, n.reason) for n in with_widget.scan.not_assessed]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "does not parse"),
        ("- just\n- a list\n", "expected a Kubernetes object or List"),
        ('{"kind": "List", "items": [1]}', "items[0]: expected an object"),
        ('{"kind": "List", "items": {}}', "expected items to be a list"),
        ("[" * 100_000, "does not parse"),
    ],
)
def test_malformed_snapshot_is_exit_2_with_what_was_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    snap = tmp_path / "bad.json"
    snap.write_text(content)
    assert run(["scan", "--config", str(config_path(tmp_path)), "--snapshot", str(snap)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_missing_snapshot_and_conflicting_sources_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config_path(tmp_path))
    assert run(["scan", "--config", cfg, "--snapshot", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    snap = str(write(tmp_path, deploy("web")))
    assert run(["scan", "--config", cfg, "--snapshot", snap, "--in-cluster"]) == 2
    assert run(["scan", "--config", cfg, "--snapshot", snap, "--shard", "3/2"]) == 2
    assert run(["scan", "--config", cfg, "--snapshot", snap, "--fail-on", "urgent"]) == 2


def test_exit_codes_follow_fail_on(tmp_path: Path) -> None:
    cfg = str(config_path(tmp_path))
    snap = str(write(tmp_path, deploy("web")))
    out = tmp_path / "r.json"
    base = ["scan", "--config", cfg, "--snapshot", snap, "-o", str(out)]
    assert run(base) == 1  # default --fail-on high
    result = ScanResult.model_validate_json(out.read_text())
    worst = min(("critical", "high", "medium", "low").index(f.severity) for f in result.findings)
    assert worst == 1  # a high finding, no critical one
    assert run([*base, "--fail-on", "critical"]) == 0


def test_fingerprints_are_stable_and_previous_keeps_first_seen(tmp_path: Path) -> None:
    cfg = str(config_path(tmp_path))
    snap = str(write(tmp_path, deploy("web")))
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    run(["scan", "--config", cfg, "--snapshot", snap, "-o", str(first)])
    run(["scan", "--config", cfg, "--snapshot", snap, "-o", str(second), "--previous", str(first)])
    a, b = (ScanResult.model_validate_json(p.read_text()) for p in (first, second))
    assert a.findings and [f.fingerprint for f in a.findings] == [f.fingerprint for f in b.findings]
    assert [f.first_seen for f in a.findings] == [f.first_seen for f in b.findings]
    assert b.scan.previous_scan == a.scan.id and a.scan.id != b.scan.id
    assert len({f.fingerprint for f in a.findings}) == len(a.findings)


def test_shards_split_namespaces_and_merge_joins_them(tmp_path: Path) -> None:
    namespaces = [f"ns-{i}" for i in range(12)]
    objects = [o for ns in namespaces for o in deploy("web", ns=ns, replicas=1)]
    whole = scan(tmp_path, objects)
    shards = [scan(tmp_path, objects, shard=(i, 3)) for i in range(3)]
    for i, shard in enumerate(shards):
        assert all(shard_of(w.namespace, 3) == i for w in shard.workloads)
    merged = merge_results(shards)
    assert sorted(w.id for w in merged.workloads) == sorted(w.id for w in whole.workloads)
    assert sorted(f.fingerprint for f in merged.findings) == sorted(f.fingerprint for f in whole.findings)
    assert merged.summary.by_severity == whole.summary.by_severity
    assert merged.scan.merged_from == tuple(s.scan.id for s in shards) and not merged.scan.partial
    missing = merge_results(shards[:2])
    assert missing.scan.partial and "missing" in missing.scan.partial_reasons[-1]


def test_merge_command_refuses_results_of_different_configs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snap = str(write(tmp_path, deploy("web")))
    one, two = tmp_path / "a.json", tmp_path / "b.json"
    run(["scan", "--config", str(config_path(tmp_path)), "--snapshot", snap, "-o", str(one)])
    run(
        [
            "scan",
            "--config",
            str(config_path(tmp_path, unmatchedArtifacts="deny")),
            "--snapshot",
            snap,
            "-o",
            str(two),
        ]
    )
    assert run(["scan", "merge", str(one), str(two)]) == 2
    assert "same config" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text('{"apiVersion": "nope"}')
    assert run(["scan", "merge", str(tmp_path / "junk.json")]) == 2


def test_reports_are_byte_capped_with_a_complete_summary(tmp_path: Path) -> None:
    objects = [o for i in range(60) for o in deploy(f"web-{i}", replicas=1)]
    result = scan(tmp_path, objects)
    [full] = build_reports(result, "openreports")
    assert full["metadata"]["annotations"]["guard.cnai.dev/truncated"] == "false"
    failing = sum(full["summary"][k] for k in ("fail", "warn", "error"))
    assert failing == len(result.findings)
    [capped] = build_reports(result, "policyreport", byte_cap=16 * 1024)
    assert len(json.dumps(capped)) <= 16 * 1024
    assert capped["summary"] == full["summary"]  # complete, whatever was cut
    assert capped["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and "configuration" not in capped
    assert int(capped["metadata"]["annotations"]["guard.cnai.dev/omitted-results"]) > 0
    passes = [r for r in capped["results"] if r["result"] == "pass"]
    assert passes and all("workloads" in r["properties"] for r in passes)  # aggregated per policy


def test_workloads_owning_each_other_are_still_audited(tmp_path: Path) -> None:
    """ownerReferences are the user's to write: two Deployments naming each other as controller
    form a loop with no top owner. Each is still a workload, audited and reported."""

    def owned_by(name: str, owner: str) -> dict[str, Any]:
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner, "uid": owner, "controller": True}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "team-a", "uid": name, "ownerReferences": [ref]},
            "spec": {"replicas": 0, "template": {"spec": {"containers": [{"name": "app", "image": IMAGE}]}}},
        }

    result = scan(tmp_path, [owned_by("a", "b"), owned_by("b", "a")])
    assert sorted(w.name for w in result.workloads) == ["a", "b"]
    assert result.summary.workloads == 2
    assert {f.resource.name for f in result.findings} == {"a", "b"}


def test_yaml_aliases_in_a_snapshot_are_refused_not_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A YAML alias reuses a node: nine levels of ten make 10^9 strings from a file of 1 KB,
    and the scan expanded them (the policy input, the result) until memory ran out. kubectl
    never writes anchors or aliases; a snapshot holding one is refused (exit 2)."""
    levels = ['x0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    snap = tmp_path / "bomb.yaml"
    snap.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: team-a, uid: u1}\n"
        + "\n".join(levels)
        + f'\nspec: {{template: {{spec: {{containers: [{{name: app, image: "{IMAGE}", env: *a8}}]}}}}}}\n'
    )
    assert run(["scan", "--config", str(config_path(tmp_path)), "--snapshot", str(snap)]) == 2
    assert "alias" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"apiVersion": "v1", "kind": "Pod", "kind": "Secret"}', "duplicate key 'kind'"),
        ('{"apiVersion": "v1", "kind": "Pod", "spec": {"priority": NaN}}', "NaN is not JSON"),
        ("[" * 600 + "]" * 600, "nested at most 500 levels"),
    ],
)
def test_a_json_snapshot_is_parsed_as_json_someone_else_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, found: str
) -> None:
    """A JSON snapshot goes through guard's parser of untrusted JSON: a duplicate key (which
    value would the scan see?), NaN and nesting past the bound are refused (exit 2), naming the
    file; json.loads took the last key and NaN."""
    snap = tmp_path / "snap.json"
    snap.write_text(text)
    assert run(["scan", "--config", str(config_path(tmp_path)), "--snapshot", str(snap)]) == 2
    err = capsys.readouterr().err
    assert found in err, err
    assert str(snap) in err


def test_output_replaces_a_planted_symlink_never_writes_through_it(tmp_path: Path) -> None:
    planted = plant_link(tmp_path, "r.json")
    cfg = str(config_path(tmp_path))
    snap = str(write(tmp_path, deploy("web")))
    out = str(planted.path)
    assert run(["scan", "--config", cfg, "--snapshot", snap, "-o", out, "--fail-on", "critical"]) == 0
    planted.assert_replaced()
    ScanResult.model_validate_json(planted.path.read_text())
