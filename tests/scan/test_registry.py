"""guard scan against Debian's docker-registry holding signed, unsigned and tampered models: the
admission verifier re-verifies against the current config; drift; recalls; a registry down."""

from __future__ import annotations

import asyncio
import functools
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from guard.cli import run
from guard.config import parse_config
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.scan.result import ScanResult
from guard.scan.scanner import run_scan
from guard.scan.sources.snapshot import SnapshotSource
from guard.signing.keys import generate_keypair
from guard.testing.admission_net import refused_address
from guard.testing.admission_registry import PublishedModels, publish_models

pytestmark = pytest.mark.registry

OTHER = "sha256:" + "e" * 64


@pytest.fixture(scope="module")
def models(registry: Any, tmp_path_factory: pytest.TempPathFactory) -> PublishedModels:
    return publish_models(registry.host, tmp_path_factory.mktemp("scan-models"), prefix="scan-models")


def workload(name: str, image: str, *, running: str | None = None, pods: int = 2) -> list[dict[str, Any]]:
    """A Deployment, its ReplicaSet and ``pods`` pods whose status reports ``running``."""
    uid = f"uid-{name}"
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "team-a", "uid": uid},
            "spec": {"template": {"spec": {"containers": [{"name": "model", "image": image}]}}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-rs",
                "namespace": "team-a",
                "uid": f"{uid}-rs",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": name,
                        "uid": uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {"template": {"spec": {"containers": [{"name": "model", "image": image}]}}},
        },
    ]
    for i in range(pods):
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-rs-{i}",
                "namespace": "team-a",
                "uid": f"{uid}-pod-{i}",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": f"{name}-rs",
                        "uid": f"{uid}-rs",
                        "controller": True,
                    }
                ],
            },
            "spec": {"containers": [{"name": "model", "image": image}]},
        }
        if running is not None:
            repo = image.split("@")[0].rsplit(":", 1)[0]
            pod["status"] = {
                "containerStatuses": [{"name": "model", "image": image, "imageID": f"{repo}@{running}"}]
            }
        objects.append(pod)
    return objects


def snapshot(tmp_path: Path, *objects: dict[str, Any]) -> Path:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))
    return path


def scan(models: PublishedModels, tmp_path: Path, *objects: dict[str, Any], **extra: Any) -> ScanResult:
    config = parse_config(models.config(**extra))
    return asyncio.run(run_scan(config, SnapshotSource([snapshot(tmp_path, *objects)])))


def by_name(result: ScanResult, name: str) -> Any:
    return next(w for w in result.workloads if w.name == name)


def findings(result: ScanResult, name: str, category: str | None = None) -> list[Any]:
    return [
        f for f in result.findings if f.resource.name == name and (category is None or f.category == category)
    ]


def test_signed_model_reverified_with_its_evidence(models: PublishedModels, tmp_path: Path) -> None:
    result = scan(models, tmp_path, *workload("good", models.signed, running=models.signed_digest))
    [art] = by_name(result, "good").artifacts
    assert art.status == "verified" and art.digest == models.signed_digest
    assert art.resolved_from_tag and art.is_model
    [signer] = art.signers
    assert signer.method == "key" and signer.identity.startswith("sha256:")
    assert signer.bundle_digest is not None and signer.bundle_digest.startswith("sha256:")
    assert art.layers  # the manifest's layers, what recalls match
    assert [(r.digest, r.pods) for r in art.running] == [(models.signed_digest, 2)]
    assert not findings(result, "good", "verification") and not findings(result, "good", "drift")
    assert not result.scan.partial


def test_unsigned_and_tampered_fail_verification_now(models: PublishedModels, tmp_path: Path) -> None:
    result = scan(
        models, tmp_path, *workload("unsigned", models.unsigned), *workload("tampered", models.tampered)
    )
    assert by_name(result, "unsigned").artifacts[0].status == "failed"
    tampered = by_name(result, "tampered").artifacts[0]
    assert tampered.status == "failed" and models.tampered_file in (tampered.reason or "")
    signature = [f for f in findings(result, "tampered") if f.policy == "supply_chain.signature"]
    assert signature and signature[0].severity in ("critical", "high") and signature[0].controls


def test_a_key_removed_from_the_config_fails_what_verified_before(
    models: PublishedModels, tmp_path: Path
) -> None:
    objects = workload("good", models.signed)
    before = scan(models, tmp_path, *objects)
    assert by_name(before, "good").artifacts[0].status == "verified"
    other = generate_keypair(tmp_path / "other", force=True)
    after = scan(
        models, tmp_path, *objects, authorities={"ci": {"kind": "key", "key": str(other.public_key)}}
    )
    assert by_name(after, "good").artifacts[0].status == "failed"


def test_running_digest_that_differs_is_drift(models: PublishedModels, tmp_path: Path) -> None:
    result = scan(models, tmp_path, *workload("moved", models.signed, running=OTHER, pods=3))
    [drift] = findings(result, "moved", "drift")
    assert drift.severity == "high" and drift.rule == "digest_drift"
    assert drift.evidence.digest == models.signed_digest and drift.evidence.running_digest == OTHER
    assert "3 pod(s)" in drift.message and drift.container == "model"


def test_recall_by_manifest_layer_and_signer(models: PublishedModels, tmp_path: Path) -> None:
    objects = workload("good", models.signed)
    first = scan(models, tmp_path, *objects)
    art = by_name(first, "good").artifacts[0]
    layer, signer = art.layers[-1], art.signers[0].identity
    cases = {
        "manifest": {"id": "R-manifest", "reason": "bad weights", "digest": models.signed_digest},
        "layer": {"id": "R-layer", "reason": "poisoned file", "digest": layer, "severity": "high"},
        "signer": {"id": "R-signer", "reason": "key leaked", "signer": signer},
    }
    for matched, recall in cases.items():
        result = scan(models, tmp_path, *objects, recalls=[recall])
        [found] = findings(result, "good", "recall")
        assert found.evidence.recall == recall["id"] and found.evidence.matched == matched
        assert found.severity == recall.get("severity", "critical")
        assert by_name(result, "good").artifacts[0].status == "failed"
    untouched = scan(models, tmp_path, *objects, recalls=[{"id": "R-x", "reason": "x", "digest": OTHER}])
    assert not findings(untouched, "good", "recall")


def test_registry_down_mid_scan_is_partial_and_exit_3(models: PublishedModels, tmp_path: Path) -> None:
    down = refused_address()
    config = models.config()
    config["rules"][0]["artifacts"].append(f"{down}/**")
    config_path = tmp_path / "guard.yaml"
    config_path.write_text(yaml.safe_dump(config))
    snap = snapshot(tmp_path, *workload("good", models.signed), *workload("gone", f"{down}/models/m:v1"))
    out = tmp_path / "result.json"
    args = ["scan", "--config", str(config_path), "--snapshot", str(snap), "-o", str(out)]
    assert run(args) == 3
    result = ScanResult.model_validate_json(out.read_text())
    assert result.scan.partial
    assert by_name(result, "gone").artifacts[0].status == "error"
    assert by_name(result, "good").artifacts[0].status == "verified"  # the scan went on
    assert run([*args, "--allow-partial"]) == 1  # the unverifiable artifact is a high finding


def test_tag_moved_since_admission_is_drift(models: PublishedModels, registry: Any, tmp_path: Path) -> None:
    """Pods run the digest admission verified; the tag now names another manifest."""
    repository = models.signed.split("/", 1)[1].rsplit(":", 1)[0]
    store = RegistryStore.open(models.host, repository, RegistryAccess(), loopback=True)
    unsigned_repo = models.unsigned.split("/", 1)[1].rsplit(":", 1)[0]
    source = RegistryStore.open(models.host, unsigned_repo, RegistryAccess(), loopback=True)
    moved = f"{models.host}/{repository}:moving"
    fetched = store.fetch_manifest(models.signed_digest)
    store.push_manifest(fetched.body, fetched.descriptor.media_type, tag="moving")
    before = scan(models, tmp_path, *workload("mover", moved, running=models.signed_digest))
    assert not findings(before, "mover", "drift")
    other = source.fetch_manifest("v1")
    for layer in json.loads(other.body)["layers"] + [json.loads(other.body)["config"]]:
        with source.fetch_blob(layer["digest"]) as chunks:
            data = b"".join(chunks)
        store.push_blob(layer["digest"], len(data), functools.partial(io.BytesIO, data))
    store.push_manifest(other.body, other.descriptor.media_type, tag="moving")
    after = scan(models, tmp_path, *workload("mover", moved, running=models.signed_digest))
    [drift] = findings(after, "mover", "drift")
    assert drift.evidence.running_digest == models.signed_digest
    assert drift.evidence.digest == other.descriptor.digest
