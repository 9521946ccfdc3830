"""The one table of kinds whose objects bring models and images into a cluster.

Each entry says where an object of that kind carries pod specs (containers, init and ephemeral
containers, image volumes, model CSI volumes, declared model sources), pod template metadata
(annotations), plain reference fields (KServe ``storageUri``), model ids, storage specs and
container-like objects outside pod specs. The configuration may add kinds or replace built-in
ones (``admission.kinds``), matched by API group and kind.

Field paths are those of the projects' API types (see ``shared/research/admission-anchors.md``
§5.6-5.7 for the sources): KServe v0.20 ``pkg/apis/serving/v1beta1/predictor.go`` and
``v1alpha2/llm_inference_service_types.go``; Kubeflow Trainer ``pkg/apis/trainer/v1alpha1/
trainjob_types.go``; LWS ``api/leaderworkerset/v1/leaderworkerset_types.go``; JobSet
``api/jobset``; vLLM production-stack ``operator/api/v1alpha1/vllmruntime_types.go``; llm-d
ModelService ``docs/userguide/model-artifacts.md``.
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
# ... and storageUris[].uri (several models, v0.15+), model.storage {key, path, parameters}
# (a storage spec instead of a URI), and the component's inline containers' env / args.
_KSERVE_REFERENCES = (
    *(f"spec.{c}.*.storageUri" for c in _KSERVE_COMPONENTS),
    *(f"spec.{c}.storageUri" for c in _KSERVE_COMPONENTS),
    *(f"spec.{c}.storageUris.*.uri" for c in _KSERVE_COMPONENTS),
    *(f"spec.{c}.*.image" for c in _KSERVE_COMPONENTS),
)
_KSERVE_STORAGE = (
    *(f"spec.{c}.*.storage" for c in _KSERVE_COMPONENTS),
    *(f"spec.{c}.storage" for c in _KSERVE_COMPONENTS),
)
_KSERVE_CONTAINERS = tuple(f"spec.{c}.*" for c in _KSERVE_COMPONENTS)
# LLMInferenceService (v1alpha1, v1alpha2): PodSpecs of the decode and prefill workloads and of
# the router's scheduler.
_LLMISVC_PODS = (
    "spec.template",
    "spec.worker",
    "spec.prefill.template",
    "spec.prefill.worker",
    "spec.router.scheduler.template",
)
# A JobSet's replicated jobs: spec.replicatedJobs[].template (a JobTemplateSpec).
_JOBSET = "replicatedJobs.*.template.spec.template"

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
            references=_KSERVE_REFERENCES,
            storage_specs=_KSERVE_STORAGE,
            containers=_KSERVE_CONTAINERS,
        )
    )
    kinds.extend(_kserve_more())
    kinds.extend(_training_and_serving_stacks())
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


def _kserve_more() -> list[KindSpec]:
    group = "serving.kserve.io"
    return [
        KindSpec(
            group=group,
            kind="LLMInferenceService",
            pod_specs=_LLMISVC_PODS,
            references=("spec.model.uri", "spec.model.lora.adapters.*.uri"),
        ),
        # TrainedModel (v1alpha1) adds a model to a running multi-model server: no Pod is
        # created, so the object itself is where its model is checked.
        KindSpec(group=group, kind="TrainedModel", references=("spec.model.storageUri",)),
        KindSpec(group=group, kind="LocalModelCache", references=("spec.sourceModelUri",)),
        # The serving runtimes' containers become the predictor's (their images, env and args).
        KindSpec(group=group, kind="ServingRuntime", pod_specs=("spec", "spec.workerSpec")),
        KindSpec(group=group, kind="ClusterServingRuntime", pod_specs=("spec", "spec.workerSpec")),
        # LLMInferenceServiceConfig: the presets LLMInferenceServices merge in (spec.baseRefs[]),
        # the same spec shape.
        KindSpec(
            group=group,
            kind="LLMInferenceServiceConfig",
            pod_specs=_LLMISVC_PODS,
            references=("spec.model.uri", "spec.model.lora.adapters.*.uri"),
        ),
        # ClusterStorageContainer: the storage initializer KServe runs for the URI prefixes it
        # lists (kit://, model-registry://, ...): its image pulls every such model.
        KindSpec(
            group=group,
            kind="ClusterStorageContainer",
            references=("spec.container.image",),
            containers=("spec.container",),
        ),
    ]


def _training_and_serving_stacks() -> list[KindSpec]:
    trainer = "trainer.kubeflow.org"
    patches = f"spec.runtimePatches.*.trainingRuntimeSpec.template.spec.{_JOBSET}"
    runtime = f"spec.template.spec.{_JOBSET}"
    return [
        KindSpec(
            group=trainer,
            kind="TrainJob",
            pod_specs=(f"{patches}.spec",),
            pod_metadata=(f"{patches}.metadata",),
            # the initializers reach the pod as env STORAGE_URI of the model- / dataset-initializer
            references=(
                "spec.initializer.model.storageUri",
                "spec.initializer.dataset.storageUri",
                "spec.trainer.image",
            ),
            containers=("spec.trainer", "spec.initializer.model", "spec.initializer.dataset"),
        ),
        KindSpec(
            group=trainer,
            kind="TrainingRuntime",
            pod_specs=(f"{runtime}.spec",),
            pod_metadata=(f"{runtime}.metadata",),
        ),
        KindSpec(
            group=trainer,
            kind="ClusterTrainingRuntime",
            pod_specs=(f"{runtime}.spec",),
            pod_metadata=(f"{runtime}.metadata",),
        ),
        KindSpec(
            group="jobset.x-k8s.io",
            kind="JobSet",
            pod_specs=(f"spec.{_JOBSET}.spec",),
            pod_metadata=(f"spec.{_JOBSET}.metadata",),
        ),
        KindSpec(
            group="leaderworkerset.x-k8s.io",
            kind="LeaderWorkerSet",
            pod_specs=(
                "spec.leaderWorkerTemplate.leaderTemplate.spec",
                "spec.leaderWorkerTemplate.workerTemplate.spec",
            ),
            pod_metadata=(
                "spec.leaderWorkerTemplate.leaderTemplate.metadata",
                "spec.leaderWorkerTemplate.workerTemplate.metadata",
            ),
        ),
        # vLLM production-stack: modelURL is a Hugging Face repo id without scheme. The operator
        # renders a Deployment (checked as one) running `vllm serve <modelURL>`.
        KindSpec(group="production-stack.vllm.ai", kind="VLLMRuntime", model_ids=("spec.model.modelURL",)),
        # llm-d ModelService: modelArtifacts.uri (hf://, pvc://, oci://); decode / prefill carry
        # containers like a pod spec.
        KindSpec(
            group="llm-d.ai",
            kind="ModelService",
            pod_specs=("spec.decode", "spec.prefill"),
            references=("spec.modelArtifacts.uri",),
        ),
    ]


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
