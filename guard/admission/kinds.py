"""The one table of kinds whose objects bring models and images into a cluster.

Each entry says where an object of that kind carries pod specs (containers, init and ephemeral
containers, image volumes), pod template metadata (annotations) and plain reference fields
(KServe ``storageUri``). The configuration may add kinds or replace built-in ones
(``admission.kinds``), matched by API group and kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from guard.admission.settings import KindSpec

_TEMPLATE = ("spec.template.spec",)
_TEMPLATE_META = ("spec.template.metadata",)

# KServe: predictor / transformer / explainer are PodSpecs inline, plus a model spec or a
# framework spec (sklearn, pytorch, ...) holding storageUri. Those specs also embed a Container
# inline, so ``spec.predictor.model.image`` replaces the serving runtime's image: read it too.
_KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")

# Kubeflow training operator v1: spec.<x>ReplicaSpecs.<Role>.template.spec
_KUBEFLOW_JOBS = {
    "PyTorchJob": "pytorchReplicaSpecs",
    "TFJob": "tfReplicaSpecs",
    "MPIJob": "mpiReplicaSpecs",
    "XGBoostJob": "xgbReplicaSpecs",
    "PaddleJob": "paddleReplicaSpecs",
    "JAXJob": "jaxReplicaSpecs",
}

_RAY_CLUSTER = ("headGroupSpec.template", "workerGroupSpecs.*.template")


def _ray(prefix: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    specs = tuple(f"{prefix}.{p}.spec" for p in _RAY_CLUSTER)
    meta = tuple(f"{prefix}.{p}.metadata" for p in _RAY_CLUSTER)
    return specs, meta


def _builtin() -> tuple[KindSpec, ...]:
    kinds: list[KindSpec] = [
        KindSpec(group="", kind="Pod", pod_specs=("spec",)),
        KindSpec(group="", kind="ReplicationController", pod_specs=_TEMPLATE, pod_metadata=_TEMPLATE_META),
    ]
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        kinds.append(KindSpec(group="apps", kind=kind, pod_specs=_TEMPLATE, pod_metadata=_TEMPLATE_META))
    kinds.append(KindSpec(group="batch", kind="Job", pod_specs=_TEMPLATE, pod_metadata=_TEMPLATE_META))
    kinds.append(
        KindSpec(
            group="batch",
            kind="CronJob",
            pod_specs=("spec.jobTemplate.spec.template.spec",),
            pod_metadata=("spec.jobTemplate.spec.template.metadata",),
        )
    )
    kinds.append(
        KindSpec(
            group="serving.kserve.io",
            kind="InferenceService",
            # the predictor's multi-node workers are a PodSpec of their own (workerSpec)
            pod_specs=(*(f"spec.{c}" for c in _KSERVE_COMPONENTS), "spec.predictor.workerSpec"),
            references=tuple(f"spec.{c}.*.storageUri" for c in _KSERVE_COMPONENTS)
            + tuple(f"spec.{c}.storageUri" for c in _KSERVE_COMPONENTS)
            + tuple(f"spec.{c}.*.image" for c in _KSERVE_COMPONENTS),
        )
    )
    for kind, field in _KUBEFLOW_JOBS.items():
        kinds.append(
            KindSpec(
                group="kubeflow.org",
                kind=kind,
                pod_specs=(f"spec.{field}.*.template.spec",),
                pod_metadata=(f"spec.{field}.*.template.metadata",),
            )
        )
    specs, meta = _ray("spec")
    kinds.append(KindSpec(group="ray.io", kind="RayCluster", pod_specs=specs, pod_metadata=meta))
    specs, meta = _ray("spec.rayClusterSpec")
    kinds.append(
        KindSpec(
            group="ray.io",
            kind="RayJob",
            pod_specs=(*specs, "spec.submitterPodTemplate.spec"),
            pod_metadata=(*meta, "spec.submitterPodTemplate.metadata"),
        )
    )
    specs, meta = _ray("spec.rayClusterConfig")
    kinds.append(KindSpec(group="ray.io", kind="RayService", pod_specs=specs, pod_metadata=meta))
    return tuple(kinds)


BUILTIN_KINDS: tuple[KindSpec, ...] = _builtin()


class KindTable:
    """Kinds by (group, kind): the built-in table with the configured kinds laid over it."""

    def __init__(self, extra: Iterable[KindSpec] = ()) -> None:
        table: dict[tuple[str, str], KindSpec] = {(k.group, k.kind): k for k in BUILTIN_KINDS}
        for spec in extra:
            table[(spec.group, spec.kind)] = spec
        self._table: Mapping[tuple[str, str], KindSpec] = table

    def lookup(self, group: str, kind: str) -> KindSpec | None:
        return self._table.get((group, kind))

    def __iter__(self) -> Iterator[KindSpec]:
        return iter(self._table.values())

    def __len__(self) -> int:
        return len(self._table)
