"""The workload summary policies read: what a Pod spec asks for, flattened.

``summarize_pod_spec`` takes a PodSpec dict (the webhook's kinds table finds it inside a Deployment,
Job, InferenceService...) and returns the ``workload`` part of the policy input
(``policies/input.schema.json``): containers with their images and GPU requests / limits, DRA
resource claims, placement, volumes and host access. GPU counts and the GPU products / node pools
a pod is confined to are computed here once, so that every policy reads the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from guard.config import ClusterFacts
from guard.errors import UsageError

GPU_RESOURCE_PREFIXES = ("nvidia.com/", "amd.com/gpu", "gpu.intel.com/")
SHARED_GPU_RESOURCE = "nvidia.com/gpu.shared"
MIG_PREFIX = "nvidia.com/mig-"
PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_DEVICE_CLASSES = ("gpu.nvidia.com", "mig.nvidia.com", "gpu.amd.com", "gpu.intel.com")
DURATION_ANNOTATION = "guard.cnai.dev/expected-duration-hours"

_CONTAINER_FIELDS = (
    ("containers", "container"),
    ("initContainers", "initContainer"),
    ("ephemeralContainers", "ephemeralContainer"),
)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: expected an object, found {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected a list, found {type(value).__name__}")
    return value


def is_gpu_resource(name: str) -> bool:
    return name.startswith(GPU_RESOURCE_PREFIXES) and name != "nvidia.com/gpu.memory"


def _count(value: Any, where: str) -> int:
    """A GPU quantity: Kubernetes requires extended resources to be whole numbers."""
    if isinstance(value, bool):
        raise UsageError(f"{where}: expected a whole number of devices, found {value!r}")
    if isinstance(value, int):
        count = value
    else:
        try:
            count = int(str(value).strip())
        except ValueError as err:
            raise UsageError(f"{where}: expected a whole number of devices, found {value!r}") from err
    if count < 0:
        raise UsageError(f"{where}: expected a non-negative number of devices, found {count}")
    return count


def _gpu_resources(resources: Mapping[str, Any], key: str, where: str) -> dict[str, int]:
    section = _mapping(resources.get(key), f"{where}.{key}")
    return {name: _count(v, f"{where}.{key}.{name}") for name, v in section.items() if is_gpu_resource(name)}


def _security(ctx: Mapping[str, Any]) -> dict[str, Any]:
    caps = _mapping(ctx.get("capabilities"), "securityContext.capabilities")
    return {
        "privileged": bool(ctx.get("privileged", False)),
        "allowPrivilegeEscalation": ctx.get("allowPrivilegeEscalation"),
        "runAsNonRoot": ctx.get("runAsNonRoot"),
        "capabilitiesAdd": [str(c) for c in _list(caps.get("add"), "capabilities.add")],
    }


def _container(raw: Any, kind: str, where: str) -> dict[str, Any]:
    spec = _mapping(raw, where)
    name = spec.get("name")
    image = spec.get("image")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{where}.name: expected a container name, found {name!r}")
    if not isinstance(image, str) or not image:
        raise UsageError(f"{where}.image: expected an image reference, found {image!r}")
    resources = _mapping(spec.get("resources"), f"{where}.resources")
    requests = _gpu_resources(resources, "requests", f"{where}.resources")
    limits = _gpu_resources(resources, "limits", f"{where}.resources")
    # Kubernetes defaults an extended resource's request to its limit.
    effective = {**requests, **limits}
    claims = [
        str(_mapping(c, f"{where}.resources.claims").get("name", ""))
        for c in _list(resources.get("claims"), f"{where}.resources.claims")
    ]
    mounts = [
        str(_mapping(m, f"{where}.volumeMounts").get("name", ""))
        for m in _list(spec.get("volumeMounts"), f"{where}.volumeMounts")
    ]
    return {
        "name": name,
        "type": kind,
        "image": image,
        "gpu": {
            "requests": requests,
            "limits": limits,
            "count": sum(effective.values()),
            "migProfiles": sorted(r.removeprefix(MIG_PREFIX) for r in effective if r.startswith(MIG_PREFIX)),
            "shared": effective.get(SHARED_GPU_RESOURCE, 0) > 0,
        },
        "claims": claims,
        "volumeMounts": mounts,
        "securityContext": _security(_mapping(spec.get("securityContext"), f"{where}.securityContext")),
    }


def _volume(raw: Any, where: str) -> dict[str, Any]:
    spec = _mapping(raw, where)
    name = str(spec.get("name", ""))
    for kind in (
        "image",
        "hostPath",
        "persistentVolumeClaim",
        "emptyDir",
        "configMap",
        "secret",
        "projected",
        "downwardAPI",
        "csi",
        "ephemeral",
        "nfs",
    ):
        if kind in spec:
            body = _mapping(spec.get(kind), f"{where}.{kind}")
            volume: dict[str, Any] = {"name": name, "type": kind}
            if kind == "image":
                volume["reference"] = body.get("reference")
                volume["pullPolicy"] = body.get("pullPolicy")
            elif kind == "hostPath":
                volume["path"] = body.get("path")
            elif kind == "persistentVolumeClaim":
                volume["claimName"] = body.get("claimName")
            return volume
    return {"name": name, "type": "other"}


def _affinity_terms(affinity: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    node = _mapping(affinity.get("nodeAffinity"), "affinity.nodeAffinity")
    required = _mapping(
        node.get("requiredDuringSchedulingIgnoredDuringExecution"), "affinity.nodeAffinity.required"
    )
    terms = []
    for term in _list(required.get("nodeSelectorTerms"), "nodeSelectorTerms"):
        exprs = _list(_mapping(term, "nodeSelectorTerm").get("matchExpressions"), "matchExpressions")
        terms.append(
            [
                {
                    "key": str(e.get("key", "")),
                    "operator": str(e.get("operator", "")),
                    "values": [str(v) for v in _list(e.get("values"), "values")],
                }
                for e in (_mapping(x, "matchExpression") for x in exprs)
            ]
        )
    return terms


def _required_labels(
    node_selector: Mapping[str, str], term: Sequence[Mapping[str, Any]]
) -> dict[str, set[str]]:
    """Label key -> the values a node must have one of, for one affinity term plus the selector."""
    required: dict[str, set[str]] = {k: {v} for k, v in node_selector.items()}
    for expr in term:
        if expr["operator"] == "In" and expr["values"]:
            values = set(expr["values"])
            required[expr["key"]] = required[expr["key"]] & values if expr["key"] in required else values
    return required


def _pools_for(required: Mapping[str, set[str]], cluster: ClusterFacts) -> set[str]:
    """The pools a pod with these required labels is confined to (empty: not confined).

    A pool is a candidate when the pod requires each of its labels and allows the pool's value;
    the pod is confined when every value it allows for those labels belongs to a candidate. It
    may then land on a candidate and on every pool whose labels satisfy all it requires, also
    one with labels it does not select (a candidate's labels and more: its nodes match too)."""
    candidates = [
        p for p in cluster.node_pools if all(k in required and v in required[k] for k, v in p.labels.items())
    ]
    keys = {k for p in candidates for k in p.labels}
    covered = all(required[k] <= {p.labels[k] for p in candidates if k in p.labels} for k in keys)
    if not (candidates and covered):
        return set()
    matching = {p.name for p in cluster.node_pools if all(p.labels.get(k) in v for k, v in required.items())}
    return {p.name for p in candidates} | matching


def _confinement(
    node_selector: Mapping[str, str], terms: list[list[dict[str, Any]]], cluster: ClusterFacts
) -> tuple[list[str] | None, list[str] | None]:
    """The GPU products and node pools the pod can only land on (None: not confined).

    A pod with several affinity terms may land on nodes matching any one term, so it is
    confined to the union over terms, and unconfined as soon as one term is."""
    products: set[str] = set()
    pools: set[str] = set()
    products_open = pools_open = False
    for term in terms or [[]]:
        required = _required_labels(node_selector, term)
        term_pools = _pools_for(required, cluster)
        if term_pools:
            pools |= term_pools
        else:
            pools_open = True
        if PRODUCT_LABEL in required:
            products |= required[PRODUCT_LABEL]
        else:
            pool_products = {p.gpu_product for p in cluster.node_pools if p.name in term_pools}
            if term_pools and None not in pool_products:
                products |= {p for p in pool_products if p is not None}
            else:
                products_open = True
    return (None if products_open else sorted(products)), (None if pools_open else sorted(pools))


def _device(exact: Mapping[str, Any], claim: str, request: str) -> dict[str, Any]:
    """One device request (``exactly``, a v1beta1 flat request, or a ``firstAvailable``
    subrequest, then named ``<request>/<subrequest>`` as Kubernetes names it)."""
    mode = str(exact.get("allocationMode", "ExactCount"))
    count = None if mode == "All" else _count(exact.get("count", 1), f"claim {claim} count")
    device_class = str(exact.get("deviceClassName", ""))
    return {
        "request": request,
        "deviceClassName": device_class,
        "allocationMode": mode,
        "count": count,
        "gpu": device_class in GPU_DEVICE_CLASSES,
    }


def _device_weight(device: Mapping[str, Any]) -> tuple[bool, bool, int]:
    """How much of GPUs a device request may take: GPU requests first, All over any count."""
    return (device["gpu"], device["count"] is None, device["count"] or 0)


def summarize_claims(
    pod_claims: Sequence[Any], resolved: Mapping[str, Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """DRA claims of the pod. ``resolved`` maps a pod claim name to the spec of its ResourceClaim
    or ResourceClaimTemplate (``resource.k8s.io/v1``, or v1beta1's flat requests); a claim the
    caller could not resolve is reported with ``resolved: false`` and policies refuse it."""
    out = []
    for i, raw in enumerate(pod_claims):
        claim = _mapping(raw, f"resourceClaims[{i}]")
        name = str(claim.get("name", ""))
        spec = (resolved or {}).get(name)
        entry: dict[str, Any] = {
            "name": name,
            "resourceClaimName": claim.get("resourceClaimName"),
            "resourceClaimTemplateName": claim.get("resourceClaimTemplateName"),
            "resolved": spec is not None,
            "devices": [],
        }
        if spec is not None:
            body = _mapping(spec.get("spec", spec), f"resourceClaims[{name}].spec")
            body = _mapping(body.get("spec", body), f"resourceClaims[{name}].spec")  # templates nest
            devices = _mapping(body.get("devices"), f"resourceClaims[{name}].devices")
            for j, req in enumerate(_list(devices.get("requests"), "devices.requests")):
                where = f"resourceClaims[{name}].devices.requests[{j}]"
                request = _mapping(req, where)
                request_name = str(request.get("name", ""))
                if "firstAvailable" in request:
                    # v1 / v1beta2 prioritized list: the claim gets one of the subrequests, so
                    # the one asking most of GPUs stands for the request (All first).
                    subs = [
                        _mapping(sub, f"{where}.firstAvailable[{k}]")
                        for k, sub in enumerate(
                            _list(request.get("firstAvailable"), f"{where}.firstAvailable")
                        )
                    ]
                    alternatives = [
                        _device(sub, name, f"{request_name}/{sub.get('name', '')}") for sub in subs
                    ]
                    if alternatives:
                        entry["devices"].append(max(alternatives, key=_device_weight))
                    continue
                exact = _mapping(request.get("exactly", request), "exactly")
                entry["devices"].append(_device(exact, name, request_name))
        out.append(entry)
    return out


def _duration_hours(pod_spec: Mapping[str, Any], annotations: Mapping[str, str]) -> float | None:
    declared = annotations.get(DURATION_ANNOTATION)
    if declared is not None:
        try:
            hours = float(declared)
        except ValueError as err:
            raise UsageError(
                f"annotation {DURATION_ANNOTATION}: expected a number of hours, found {declared!r}"
            ) from err
        if not math.isfinite(hours) or hours <= 0:  # float() reads "nan" and "inf" too
            raise UsageError(
                f"annotation {DURATION_ANNOTATION}: expected a finite number of hours > 0, found {declared!r}"
            )
        return hours
    deadline = pod_spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not isinstance(deadline, bool) and deadline > 0:
        return deadline / 3600
    return None


def summarize_pod_spec(
    pod_spec: Mapping[str, Any],
    cluster: ClusterFacts,
    *,
    kind: str = "Pod",
    name: str = "",
    namespace: str = "",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    resolved_claims: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``workload`` part of the policy input, from a PodSpec dict."""
    spec = _mapping(pod_spec, "spec")
    annotations = dict(annotations or {})
    containers = [
        _container(raw, kind_name, f"spec.{field}[{i}]")
        for field, kind_name in _CONTAINER_FIELDS
        for i, raw in enumerate(_list(spec.get(field), f"spec.{field}"))
    ]
    if not any(c["type"] == "container" for c in containers):
        raise UsageError("spec.containers: expected at least one container, found none")
    claims = summarize_claims(_list(spec.get("resourceClaims"), "spec.resourceClaims"), resolved_claims)
    selector = _mapping(spec.get("nodeSelector"), "spec.nodeSelector")
    node_selector = {str(k): str(v) for k, v in selector.items()}
    tolerations = [dict(_mapping(t, "toleration")) for t in _list(spec.get("tolerations"), "tolerations")]
    volumes = [_volume(v, f"spec.volumes[{i}]") for i, v in enumerate(_list(spec.get("volumes"), "volumes"))]
    terms = _affinity_terms(_mapping(spec.get("affinity"), "spec.affinity"))
    products, pools = _confinement(node_selector, terms, cluster)
    regular = sum(c["gpu"]["count"] for c in containers if c["type"] == "container")
    # As the scheduler counts: an init container with restartPolicy Always (a sidecar) keeps
    # running, beside the init containers after it and beside the app containers.
    init = sidecars = 0
    inits = [c for c in containers if c["type"] == "initContainer"]
    for raw, c in zip(_list(spec.get("initContainers"), "spec.initContainers"), inits, strict=True):
        if _mapping(raw, "initContainer").get("restartPolicy") == "Always":
            sidecars += c["gpu"]["count"]
        else:
            init = max(init, sidecars + c["gpu"]["count"])
    regular += sidecars
    dra = sum(d["count"] or 0 for c in claims for d in c["devices"] if d["gpu"])
    return {
        "kind": kind,
        "name": name,
        "namespace": namespace,
        "labels": dict(labels or {}),
        "annotations": annotations,
        "containers": containers,
        "resourceClaims": claims,
        "gpu": {"extended": max(regular, init), "dra": dra, "total": max(regular, init) + dra},
        "placement": {
            "nodeSelector": node_selector,
            "requiredAffinity": terms,
            "tolerations": tolerations,
            "runtimeClassName": spec.get("runtimeClassName"),
            "nodeName": spec.get("nodeName"),
            "gpuProducts": products,
            "nodePools": pools,
        },
        "volumes": volumes,
        "hostNetwork": bool(spec.get("hostNetwork", False)),
        "hostPID": bool(spec.get("hostPID", False)),
        "hostIPC": bool(spec.get("hostIPC", False)),
        "durationHours": _duration_hours(spec, annotations),
    }
