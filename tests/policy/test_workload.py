"""Workload summaries from Pod specs, and the input builder."""

from __future__ import annotations

from typing import Any

import pytest

from guard.config import parse_config
from guard.errors import UsageError
from guard.policy.examples import CONFIG, POOL, example_input
from guard.policy.input import InputConstants, build_input_for_object
from guard.policy.workload import summarize_pod_spec

CLUSTER = parse_config(CONFIG).cluster


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "containers": [{"name": "main", "image": "registry.example.com/x@sha256:" + "a" * 64}]
    }
    base.update(spec)
    return base


def _gpus(resources: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "img", "resources": {"limits": resources}, **extra}


def test_gpu_counts_extended_resources() -> None:
    summary = summarize_pod_spec(
        _pod(
            containers=[
                _gpus({"nvidia.com/gpu": "2", "cpu": "4"}),
                {**_gpus({"nvidia.com/mig-3g.40gb": "1"}), "name": "b"},
            ],
            initContainers=[{**_gpus({"nvidia.com/gpu": "4"}), "name": "warmup"}],
        ),
        CLUSTER,
    )
    main, b, warmup = summary["containers"]
    assert main["gpu"] == {
        "requests": {},
        "limits": {"nvidia.com/gpu": 2},
        "count": 2,
        "migProfiles": [],
        "shared": False,
    }
    assert b["gpu"]["migProfiles"] == ["3g.40gb"]
    assert warmup["type"] == "initContainer"
    # pod total: max(sum of containers = 3, largest init container = 4)
    assert summary["gpu"] == {"extended": 4, "dra": 0, "total": 4}


def test_shared_gpu_flag() -> None:
    summary = summarize_pod_spec(_pod(containers=[_gpus({"nvidia.com/gpu.shared": "1"})]), CLUSTER)
    assert summary["containers"][0]["gpu"]["shared"] is True


def test_request_defaults_to_limit_and_mismatch_is_kept() -> None:
    container = {
        "name": "main",
        "image": "img",
        "resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}},
    }
    gpu = summarize_pod_spec(_pod(containers=[container]), CLUSTER)["containers"][0]["gpu"]
    assert gpu["requests"] == {"nvidia.com/gpu": 1}
    assert gpu["limits"] == {"nvidia.com/gpu": 2}
    assert gpu["count"] == 2


@pytest.mark.parametrize("value", ["1.5", "-1", "lots", True])
def test_bad_gpu_quantity_is_refused(value: object) -> None:
    with pytest.raises(
        UsageError, match=r"spec\.containers\[0\]\.resources\.limits\.nvidia\.com/gpu: expected"
    ):
        summarize_pod_spec(
            _pod(
                containers=[
                    {"name": "main", "image": "i", "resources": {"limits": {"nvidia.com/gpu": value}}}
                ]
            ),
            CLUSTER,
        )


def test_pod_without_containers_is_refused() -> None:
    with pytest.raises(UsageError, match="at least one container"):
        summarize_pod_spec({"containers": []}, CLUSTER)


def test_node_selector_confines_to_pool_and_product() -> None:
    placement = summarize_pod_spec(_pod(nodeSelector={POOL: "team-a-h100"}), CLUSTER)["placement"]
    assert placement["nodePools"] == ["team-a-h100"]
    assert placement["gpuProducts"] == ["NVIDIA-H100-80GB-HBM3"]


def test_unconfined_pod() -> None:
    placement = summarize_pod_spec(_pod(), CLUSTER)["placement"]
    assert placement["nodePools"] is None
    assert placement["gpuProducts"] is None


def test_affinity_terms_are_ored() -> None:
    def term(key: str, *values: str) -> dict[str, Any]:
        return {"matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}

    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    term("nvidia.com/gpu.product", "NVIDIA-L4"),
                    term(POOL, "team-a-h100"),
                ]
            }
        }
    }
    placement = summarize_pod_spec(_pod(affinity=affinity), CLUSTER)["placement"]
    assert placement["gpuProducts"] == ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"]
    # the first term selects no pool: the pod is not confined to pools
    assert placement["nodePools"] is None
    assert placement["requiredAffinity"][1] == [{"key": POOL, "operator": "In", "values": ["team-a-h100"]}]


def test_affinity_with_several_pool_values() -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": POOL, "operator": "In", "values": ["team-a-h100", "team-a-l4"]}
                        ]
                    },
                ]
            }
        }
    }
    placement = summarize_pod_spec(_pod(affinity=affinity), CLUSTER)["placement"]
    assert placement["nodePools"] == ["team-a-h100", "team-a-l4"]
    assert placement["gpuProducts"] == ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"]


def test_dra_claims_resolved_and_not() -> None:
    pod = _pod(
        containers=[
            {"name": "main", "image": "i", "resources": {"claims": [{"name": "gpus"}, {"name": "other"}]}}
        ],
        resourceClaims=[
            {"name": "gpus", "resourceClaimTemplateName": "two-gpus"},
            {"name": "other", "resourceClaimName": "c"},
        ],
    )
    resolved = {
        "gpus": {
            "spec": {
                "spec": {
                    "devices": {
                        "requests": [
                            {"name": "g", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2}},
                        ]
                    }
                }
            }
        }
    }
    summary = summarize_pod_spec(pod, CLUSTER, resolved_claims=resolved)
    gpus, other = summary["resourceClaims"]
    assert gpus["resolved"] is True
    assert gpus["devices"] == [
        {
            "request": "g",
            "deviceClassName": "gpu.nvidia.com",
            "allocationMode": "ExactCount",
            "count": 2,
            "gpu": True,
        }
    ]
    assert other == {
        "name": "other",
        "resourceClaimName": "c",
        "resourceClaimTemplateName": None,
        "resolved": False,
        "devices": [],
    }
    assert summary["gpu"] == {"extended": 0, "dra": 2, "total": 2}
    assert summary["containers"][0]["claims"] == ["gpus", "other"]


def test_v1beta1_flat_device_request() -> None:
    pod = _pod(resourceClaims=[{"name": "g", "resourceClaimName": "c"}])
    resolved = {
        "g": {
            "devices": {
                "requests": [{"name": "r", "deviceClassName": "mig.nvidia.com", "allocationMode": "All"}]
            }
        }
    }
    device = summarize_pod_spec(pod, CLUSTER, resolved_claims=resolved)["resourceClaims"][0]["devices"][0]
    assert device["allocationMode"] == "All"
    assert device["count"] is None
    assert device["gpu"] is True


def test_volumes_host_access_and_duration() -> None:
    pod = _pod(
        volumes=[
            {"name": "m", "image": {"reference": "r/m:1"}},
            {"name": "h", "hostPath": {"path": "/data"}},
            {"name": "e", "emptyDir": {}},
        ],
        hostNetwork=True,
        runtimeClassName="gvisor",
        activeDeadlineSeconds=7200,
    )
    summary = summarize_pod_spec(pod, CLUSTER)
    assert [v["type"] for v in summary["volumes"]] == ["image", "hostPath", "emptyDir"]
    assert summary["volumes"][0]["reference"] == "r/m:1"
    assert summary["volumes"][1]["path"] == "/data"
    assert summary["hostNetwork"] is True
    assert summary["placement"]["runtimeClassName"] == "gvisor"
    assert summary["durationHours"] == 2


def test_duration_annotation_wins_and_is_checked() -> None:
    pod = _pod(activeDeadlineSeconds=7200)
    annotations = {"guard.cnai.dev/expected-duration-hours": "36"}
    assert summarize_pod_spec(pod, CLUSTER, annotations=annotations)["durationHours"] == 36
    with pytest.raises(UsageError, match="expected a number of hours, found 'soon'"):
        summarize_pod_spec(pod, CLUSTER, annotations={"guard.cnai.dev/expected-duration-hours": "soon"})
    # float() reads these too: none is a duration (NaN made the policy engine refuse the input)
    for odd in ("nan", "NaN", "inf", "-Infinity", "0", "-2"):
        with pytest.raises(UsageError, match=f"expected a finite number of hours > 0, found '{odd}'"):
            summarize_pod_spec(pod, CLUSTER, annotations={"guard.cnai.dev/expected-duration-hours": odd})


def test_build_input_resolves_tenant_rules_and_facts() -> None:
    document = example_input()
    assert document["tenant"]["name"] == "team-a"
    assert [t["name"] for t in document["otherTenants"]] == ["team-b"]
    image, model = document["artifacts"]
    assert image["rule"] == "platform-images"
    assert image["isModel"] is False
    assert model["rule"] == "team-a-models"
    assert model["requiredAttestations"] == ["sbom", "datasets"]
    assert model["facts"]["model"]["parameterCount"] == 8030261248
    assert document["request"]["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert document["workload"]["ai"] is True
    assert document["settings"]["unmatchedArtifacts"] == "deny"
    assert document["cluster"]["gpuProducts"]["NVIDIA-L4"] == {"memoryGiB": 24, "boardPowerW": 72}


class _CountingUsage:
    """Published usage that changes with every look-up (as a refreshed usage file does)."""

    def __init__(self) -> None:
        self.calls = 0

    def carbon_fields(self, tenant: str, typed_used: float) -> dict[str, Any]:
        self.calls += 1
        return {"usedKgCO2e": typed_used + self.calls, "usedSource": "measured"}


def test_input_constants_built_once_give_the_same_input_with_fresh_usage() -> None:
    config = parse_config(CONFIG)
    constants = InputConstants(config)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    spec = {"containers": [{"name": "c", "image": "registry.example.com/team-a/app:1"}]}
    shared_usage, fresh_usage = _CountingUsage(), _CountingUsage()
    for namespace in ("team-a", "team-b", "no-tenant", "team-a"):
        request = {"namespace": namespace}
        shared = build_input_for_object(
            pod, spec, [], config, request=request, usage=shared_usage, constants=constants
        )
        fresh = build_input_for_object(pod, spec, [], config, request=request, usage=fresh_usage)
        assert shared == fresh
    # the tenant's carbon is read for every request: the second team-a input saw the new figure
    assert shared["tenant"]["carbon"]["usedKgCO2e"] == 1000 + 2
    assert [t["name"] for t in shared["otherTenants"]] == ["team-b"]


def test_a_template_s_pods_are_summarized_once_and_each_gets_its_own_name() -> None:
    """Every example of the library (each policy's allowed and denied cases), built with one
    config's constants for three pods of the template: the same input as built afresh."""
    import copy

    from guard.policy.examples import SAMPLES, case

    cases = [m for allowed, denied in SAMPLES.values() for m in (*allowed.values(), *denied.values())]
    assert len(cases) > 40
    for mutation in cases:
        c = case(mutation)
        config = c.config_model()
        constants = InputConstants(config)
        template = c.obj["spec"]["template"]
        for name in ("llama-7d9f8c6b5-aaaaa", "llama-7d9f8c6b5-bbbbb", "llama-7d9f8c6b5-aaaaa"):
            obj = copy.deepcopy(c.obj)
            obj["metadata"]["name"] = name
            args = (obj, template["spec"], c.artifacts(), config)
            kwargs: dict[str, Any] = {
                "template_metadata": template.get("metadata"),
                "resolved_claims": c.claims,
            }
            shared = build_input_for_object(*args, **kwargs, constants=constants)
            assert shared == build_input_for_object(*args, **kwargs)
            assert shared["workload"]["name"] == name
            assert list(shared["workload"]) == [*summarize_pod_spec(template["spec"], config.cluster), "ai"]
    # a spec the summary refuses is refused every time (nothing kept of it)
    constants = InputConstants(parse_config(CONFIG))
    bad = {"containers": [{"name": "c"}]}
    for _ in range(2):
        with pytest.raises(UsageError, match="image"):
            build_input_for_object(
                {"kind": "Pod", "metadata": {}}, bad, [], constants.config, constants=constants
            )


def test_sidecar_init_containers_add_up_with_the_app_containers() -> None:
    """Init containers with restartPolicy Always (sidecars) keep running beside the app: the pod
    holds their GPUs and the app's at once. A plain init container after them runs beside the
    sidecars declared before it."""
    sidecar = {**_gpus({"nvidia.com/gpu": "4"}), "name": "proxy", "restartPolicy": "Always"}
    summary = summarize_pod_spec(
        _pod(
            containers=[_gpus({"nvidia.com/gpu": "4"})],
            initContainers=[sidecar, {**sidecar, "name": "proxy-2"}],
        ),
        CLUSTER,
    )
    assert summary["gpu"] == {"extended": 12, "dra": 0, "total": 12}
    late_init = {**_gpus({"nvidia.com/gpu": "3"}), "name": "warmup"}
    summary = summarize_pod_spec(
        _pod(containers=[_gpus({"nvidia.com/gpu": "1"})], initContainers=[sidecar, late_init]), CLUSTER
    )
    # the warm-up runs while the sidecar holds 4: 7 > 4 + 1
    assert summary["gpu"] == {"extended": 7, "dra": 0, "total": 7}
    early_init = {**_gpus({"nvidia.com/gpu": "3"}), "name": "warmup"}
    summary = summarize_pod_spec(
        _pod(containers=[_gpus({"nvidia.com/gpu": "1"})], initContainers=[early_init, sidecar]), CLUSTER
    )
    assert summary["gpu"] == {"extended": 5, "dra": 0, "total": 5}


def test_dra_first_available_counts_its_largest_gpu_alternative() -> None:
    """A v1 request with firstAvailable gets one of its subrequests: the quota counts the largest
    GPU one, and an allocationMode All among them is unbounded."""
    pod = _pod(resourceClaims=[{"name": "g", "resourceClaimTemplateName": "t"}])

    def resolved(*subrequests: dict[str, Any]) -> dict[str, Any]:
        request = {"name": "r", "firstAvailable": list(subrequests)}
        return {"g": {"spec": {"spec": {"devices": {"requests": [request]}}}}}

    big = {"name": "big", "deviceClassName": "gpu.nvidia.com", "count": 64}
    small = {"name": "small", "deviceClassName": "gpu.nvidia.com", "count": 2}
    summary = summarize_pod_spec(pod, CLUSTER, resolved_claims=resolved(small, big))
    assert summary["resourceClaims"][0]["devices"] == [
        {
            "request": "r/big",
            "deviceClassName": "gpu.nvidia.com",
            "allocationMode": "ExactCount",
            "count": 64,
            "gpu": True,
        }
    ]
    assert summary["gpu"] == {"extended": 0, "dra": 64, "total": 64}
    every = {"name": "all", "deviceClassName": "gpu.nvidia.com", "allocationMode": "All"}
    device = summarize_pod_spec(pod, CLUSTER, resolved_claims=resolved(small, every))["resourceClaims"][0]
    assert device["devices"][0]["allocationMode"] == "All"
    assert device["devices"][0]["request"] == "r/all"


def test_a_pool_whose_labels_include_the_selected_ones_is_a_landing_place() -> None:
    """Nodes of a pool with more labels than the pod selects match the selector too: the pod may
    land there, so that pool is among those it is confined to."""
    accelerator = "cloud.google.com/gke-accelerator"
    config = {
        **CONFIG,
        "cluster": {
            "nodePools": [
                {"name": "l4", "labels": {accelerator: "nvidia-l4"}},
                {"name": "l4-b", "labels": {accelerator: "nvidia-l4", "dedicated": "team-b"}},
                {"name": "h100", "labels": {accelerator: "nvidia-h100", "dedicated": "team-b"}},
                {"name": "other-scheme", "labels": {"pool": "x"}},  # says nothing of the accelerator
            ]
        },
        "tenants": [],
    }
    cluster = parse_config(config).cluster
    placement = summarize_pod_spec(_pod(nodeSelector={accelerator: "nvidia-l4"}), cluster)["placement"]
    # not h100 (another value of the selected label), nor a pool whose accelerator is not known
    assert placement["nodePools"] == ["l4", "l4-b"]
