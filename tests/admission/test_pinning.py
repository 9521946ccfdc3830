"""Digest pinning (guard.admission.pinning, POST /mutate): every patch is applied with a real RFC
6902 library (jsonpatch) to each kind of object and the result checked."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

import jsonpatch
import pytest

from guard.admission.kinds import KindTable
from guard.admission.pinning import DigestPinner, PinResult, mutation_answer
from guard.admission.references import extract_references
from guard.admission.review import parse_review
from guard.config import GuardConfig, parse_config
from guard.testing.admission import admission_review, pod

REG = "registry.example"
TABLE = KindTable()


def digest(reference: str) -> str:
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


class Resolver:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, reference: str) -> str:
        self.calls.append(reference)
        return digest(reference)


def config(pin: str = "top-level", enforcement: str = "deny", **extra: Any) -> GuardConfig:
    return parse_config(
        {
            "authorities": {"ci": {"kind": "key", "key": "/etc/guard/trust/ci.pub"}},
            "rules": [{"name": "models", "artifacts": [f"{REG}/**"], "authorities": ["ci"], "pin": pin}],
            "policy": {"defaultEnforcement": enforcement},
            **extra,
        }
    )


def pinner(pin: str = "top-level", enforcement: str = "deny") -> tuple[DigestPinner, Resolver]:
    resolver = Resolver()
    return DigestPinner(config(pin, enforcement), resolver, TABLE), resolver


async def pin(
    obj: dict[str, Any], group: str, kind: str, p: DigestPinner | None = None, **kw: Any
) -> PinResult:
    return await (p or pinner()[0]).pin(obj, group=group, kind=kind, namespace="team-a", **kw)


def apply(obj: dict[str, Any], result: PinResult) -> dict[str, Any]:
    patched: dict[str, Any] = jsonpatch.apply_patch(obj, result.operations)
    return patched


def pinned(ref: str) -> str:
    return f"{ref}@{digest(ref)}"


def pinned_uri(uri: str) -> str:
    """An oci:// URI pinned: the digest the bare reference resolves to, the scheme kept."""
    return f"{uri}@{digest(uri.removeprefix('oci://'))}"


def pod_spec(*images: str) -> dict[str, Any]:
    return {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}


def template(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "x"}}, "spec": spec}


def full_pod_spec() -> dict[str, Any]:
    return {
        "initContainers": [{"name": "init", "image": f"{REG}/init:1"}],
        "containers": [
            {"name": "app", "image": f"{REG}/app:1"},
            {"name": "other", "image": "docker.io/library/busybox:1.36"},  # no rule covers it
            {"name": "fixed", "image": pinned(f"{REG}/fixed:1")},
        ],
        "ephemeralContainers": [{"name": "debug", "image": f"{REG}/debug:1"}],
        "volumes": [
            {"name": "weights", "image": {"reference": f"{REG}/model:v3", "pullPolicy": "IfNotPresent"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    }


WANTED_POD = {
    "initContainers/0/image": f"{REG}/init:1",
    "containers/0/image": f"{REG}/app:1",
    "ephemeralContainers/0/image": f"{REG}/debug:1",
    "volumes/0/image/reference": f"{REG}/model:v3",
}


@pytest.mark.parametrize(
    ("group", "kind", "obj", "prefix"),
    [
        ("", "Pod", {"metadata": {"name": "p"}, "spec": full_pod_spec()}, "/spec/"),
        ("apps", "Deployment", {"spec": {"template": template(full_pod_spec())}}, "/spec/template/spec/"),
        ("apps", "StatefulSet", {"spec": {"template": template(full_pod_spec())}}, "/spec/template/spec/"),
        ("apps", "DaemonSet", {"spec": {"template": template(full_pod_spec())}}, "/spec/template/spec/"),
        ("batch", "Job", {"spec": {"template": template(full_pod_spec())}}, "/spec/template/spec/"),
        (
            "batch",
            "CronJob",
            {
                "spec": {
                    "schedule": "@daily",
                    "jobTemplate": {"spec": {"template": template(full_pod_spec())}},
                }
            },
            "/spec/jobTemplate/spec/template/spec/",
        ),
        (
            "kubeflow.org",
            "PyTorchJob",
            {"spec": {"pytorchReplicaSpecs": {"Master": {"template": template(full_pod_spec())}}}},
            "/spec/pytorchReplicaSpecs/Master/template/spec/",
        ),
    ],
    ids=["Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "PyTorchJob"],
)
async def test_pod_spec_kinds_are_pinned_in_place(
    group: str, kind: str, obj: dict[str, Any], prefix: str
) -> None:
    original = copy.deepcopy(obj)
    result = await pin(obj, group, kind)
    assert obj == original  # computing the patch changes nothing
    # one test op right before each replace
    ops = result.operations
    assert [op["op"] for op in ops] == ["test", "replace"] * len(WANTED_POD)
    for test, replace in zip(ops[::2], ops[1::2], strict=True):
        assert test["path"] == replace["path"]
        assert replace["value"] == pinned(test["value"])
    patched = apply(obj, result)
    expected = copy.deepcopy(original)
    for path, ref in WANTED_POD.items():
        expected = jsonpatch.apply_patch(
            expected, [{"op": "replace", "path": prefix + path, "value": pinned(ref)}]
        )
    assert patched == expected
    # reinvocation (reinvocationPolicy IfNeeded) leaves it alone
    again = await pin(patched, group, kind)
    assert again.operations == []


async def test_kserve_storage_uris_and_component_images() -> None:
    obj = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "pytorch"}, "storageUri": f"oci://{REG}/llama:8b"},
                "storageUris": [{"uri": f"oci://{REG}/lora:1", "mountPath": "/a"}, {"uri": "s3://bucket/x"}],
                "containers": [{"name": "kserve-container", "image": f"{REG}/server:2"}],
            },
            "transformer": {"containers": [{"name": "t", "image": f"{REG}/transformer:1"}]},
        },
    }
    result = await pin(obj, "serving.kserve.io", "InferenceService")
    patched = apply(obj, result)
    predictor = patched["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == pinned_uri(f"oci://{REG}/llama:8b")
    assert predictor["storageUris"][0]["uri"] == pinned_uri(f"oci://{REG}/lora:1")
    assert predictor["storageUris"][1]["uri"] == "s3://bucket/x"  # not OCI: never touched
    assert predictor["containers"][0]["image"] == pinned(f"{REG}/server:2")
    assert patched["spec"]["transformer"]["containers"][0]["image"] == pinned(f"{REG}/transformer:1")
    assert (await pin(patched, "serving.kserve.io", "InferenceService")).operations == []


async def test_llm_inference_service_model_uri() -> None:
    obj = {
        "spec": {
            "model": {"uri": f"oci://{REG}/qwen:7b", "name": "qwen"},
            "template": pod_spec(f"{REG}/vllm:1"),
        }
    }
    result = await pin(obj, "serving.kserve.io", "LLMInferenceService")
    patched = apply(obj, result)
    assert patched["spec"]["model"]["uri"] == pinned_uri(f"oci://{REG}/qwen:7b")
    assert patched["spec"]["template"]["containers"][0]["image"] == pinned(f"{REG}/vllm:1")


async def test_each_reference_is_resolved_once() -> None:
    p, resolver = pinner()
    obj = {"spec": pod_spec(f"{REG}/app:1", f"{REG}/app:1", f"{REG}/APP:1".lower())}
    result = await pin(obj, "", "Pod", p)
    assert len(result.pinned) == 3
    assert resolver.calls == [f"{REG}/app:1"]


async def test_a_concurrent_mutation_makes_the_patch_fail_instead_of_overwriting() -> None:
    obj = {"spec": pod_spec(f"{REG}/app:1")}
    result = await pin(obj, "", "Pod")
    changed = copy.deepcopy(obj)
    changed["spec"]["containers"][0]["image"] = f"{REG}/app:2"  # another webhook rewrote it
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(changed, result.operations)


def _owned(kind: str, api_version: str, controller: bool = True) -> dict[str, Any]:
    return {
        "ownerReferences": [
            {"apiVersion": api_version, "kind": kind, "name": "x", "uid": "1", "controller": controller}
        ]
    }


async def test_objects_owned_by_a_controller_of_the_table_are_not_mutated() -> None:
    rs = {
        "metadata": _owned("Deployment", "apps/v1"),
        "spec": {"template": template(pod_spec(f"{REG}/app:1"))},
    }
    result = await pin(rs, "apps", "ReplicaSet")
    assert result.operations == []
    assert any("controlled by Deployment" in note for note in result.notes)
    owned_pod = {"metadata": _owned("ReplicaSet", "apps/v1"), "spec": pod_spec(f"{REG}/app:1")}
    assert (await pin(owned_pod, "", "Pod")).operations == []
    # a non-controller owner, or a controller guard does not know, does not stop pinning
    loose = {"metadata": _owned("ReplicaSet", "apps/v1", controller=False), "spec": pod_spec(f"{REG}/app:1")}
    assert (await pin(loose, "", "Pod")).operations != []
    foreign = {"metadata": _owned("Workflow", "argoproj.io/v1alpha1"), "spec": pod_spec(f"{REG}/app:1")}
    assert (await pin(foreign, "", "Pod")).operations != []


async def test_pods_only_mode_pins_pods_even_when_owned_and_never_controllers() -> None:
    p, _ = pinner("pods-only")
    owned_pod = {"metadata": _owned("ReplicaSet", "apps/v1"), "spec": pod_spec(f"{REG}/app:1")}
    patched = apply(owned_pod, await pin(owned_pod, "", "Pod", p))
    assert patched["spec"]["containers"][0]["image"] == pinned(f"{REG}/app:1")
    deployment = {"spec": {"template": template(pod_spec(f"{REG}/app:1"))}}
    assert (await pin(deployment, "apps", "Deployment", p)).operations == []


async def test_off_mode_and_unmatched_references_are_left_alone() -> None:
    p, resolver = pinner("off")
    assert (await pin({"spec": pod_spec(f"{REG}/app:1")}, "", "Pod", p)).operations == []
    assert (await pin({"spec": pod_spec("docker.io/library/nginx:1")}, "", "Pod")).operations == []
    assert resolver.calls == []


@pytest.mark.parametrize("enforcement", ["warn", "dryrun"])
async def test_never_in_warn_or_dryrun(enforcement: str) -> None:
    p, resolver = pinner(enforcement=enforcement)
    result = await pin({"spec": pod_spec(f"{REG}/app:1")}, "", "Pod", p)
    assert result.operations == []
    assert resolver.calls == []
    assert result.notes == [f"not pinned: the policy runs in {enforcement}"]


async def test_never_a_job_on_update_and_on_update_only_what_changed() -> None:
    job = {"spec": {"template": template(pod_spec(f"{REG}/app:1"))}}
    assert (await pin(job, "batch", "Job", operation="UPDATE", old_object=job)).operations == []
    assert (await pin(job, "batch", "Job", operation="UPDATE", old_object=None)).operations == []
    old = {"spec": {"template": template(pod_spec(f"{REG}/app:1", f"{REG}/side:1"))}}
    new = {"spec": {"template": template(pod_spec(f"{REG}/app:1", f"{REG}/side:2"))}}
    result = await pin(new, "apps", "Deployment", operation="UPDATE", old_object=old)
    assert list(result.pinned) == ["/spec/template/spec/containers/1/image"]
    # the pod's ephemeral container added by kubectl debug (UPDATE of pods/ephemeralcontainers)
    running = {"spec": pod_spec(f"{REG}/app:1")}
    debugged = copy.deepcopy(running)
    debugged["spec"]["ephemeralContainers"] = [{"name": "debug", "image": f"{REG}/debug:1"}]
    result = await pin(debugged, "", "Pod", operation="UPDATE", old_object=running)
    assert list(result.pinned) == ["/spec/ephemeralContainers/0/image"]
    assert (await pin(job, "batch", "Job", operation="DELETE")).operations == []


async def test_unreadable_and_odd_references_are_left_to_the_validating_side() -> None:
    obj = {"spec": pod_spec(f"{REG}/app:1 ", f"{REG}/UPPER CASE:1", f"{REG}/app@sha256:abc", "")}
    assert (await pin(obj, "", "Pod")).operations == []


async def test_resolution_failure_leaves_the_reference_and_says_so() -> None:
    from guard.errors import InfrastructureError

    async def failing(_reference: str) -> str:
        raise InfrastructureError("registry.example: connection refused")

    p = DigestPinner(config(), failing, TABLE)
    result = await pin({"spec": pod_spec(f"{REG}/app:1")}, "", "Pod", p)
    assert result.operations == []
    assert "did not resolve" in result.notes[0]


def test_json_pointer_escapes_keys() -> None:
    from guard.admission.pinning import pointer

    assert pointer(("spec", "a/b", "m~n", "0")) == "/spec/a~1b/m~0n/0"


async def test_the_validating_side_sees_the_pinned_digest() -> None:
    obj = pod(f"{REG}/app:1")
    result = await pin(obj, "", "Pod")
    patched = apply(obj, result)
    (reference,) = extract_references(patched, TABLE.lookup("", "Pod"), ())  # type: ignore[arg-type]
    assert reference.pinned
    assert reference.reference == f"{REG}/app:1@{digest(f'{REG}/app:1')}"


def _review(obj: dict[str, Any], **kw: Any) -> Any:
    return parse_review(json.dumps(admission_review(obj, **kw)).encode()).request


async def test_mutation_answer_sends_patch_type_only_with_a_patch() -> None:
    p, _ = pinner()
    answer = await mutation_answer(p, _review(pod(f"{REG}/app:1")), frozenset())
    assert answer["allowed"] is True
    assert answer["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(pod(f"{REG}/app:1"), json.loads(base64.b64decode(answer["patch"])))
    assert patched["spec"]["containers"][0]["image"] == pinned(f"{REG}/app:1")
    for obj in (pod("docker.io/library/nginx:1"), patched):
        answer = await mutation_answer(p, _review(obj), frozenset())
        assert answer == {"uid": answer["uid"], "allowed": True}
    exempt = await mutation_answer(p, _review(pod(f"{REG}/app:1")), frozenset({"team-a"}))
    assert "patch" not in exempt
    assert "patchType" not in exempt


async def test_never_when_admission_mode_is_warn() -> None:
    resolver = Resolver()
    p = DigestPinner(config(admission={"mode": "warn"}), resolver, TABLE)
    result = await pin({"spec": pod_spec(f"{REG}/app:1")}, "", "Pod", p)
    assert result.operations == []
    assert resolver.calls == []
    assert result.notes == ["not pinned: the policy runs in warn"]
