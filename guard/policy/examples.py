"""Example workloads for the policy library: the samples beside each policy, the demo, the
benchmark and the tests are all built here, through the real input builder.

``python -m guard.policy.examples [DIR]`` rewrites ``<DIR>/<bundle>/samples/{allowed,denied}/``.
A denied sample is named after the rule it must trigger (``<rule>.json`` or ``<rule>--<case>.json``).
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guard.attest.facts import ModelFacts
from guard.config import GuardConfig, parse_config
from guard.policy.input import Artifact, Signer, Verification, build_input_for_object

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
IMAGE = f"registry.example.com/platform/vllm@{D1}"
MODEL = f"registry.example.com/team-a/llama-3-8b@{D2}"
CI_ISSUER = "https://token.actions.githubusercontent.com"
CI_SUBJECT = "https://github.com/example/ml-pipelines/.github/workflows/train.yml@refs/heads/main"
PLATFORM_KEY = "sha256:" + "ab" * 32
POOL = "guard.cnai.dev/pool"

CONFIG: dict[str, Any] = {
    "authorities": {
        "platform-key": {"kind": "key", "key": "keys/platform.pub"},
        "team-a-ci": {
            "kind": "keyless",
            "issuer": CI_ISSUER,
            "identityRegex": r"https://github\.com/example/ml-pipelines/.+",
        },
        "vendor": {
            "kind": "keyless",
            "issuer": "https://accounts.google.com",
            "identity": "release@vendor.example",
        },
    },
    "rules": [
        {
            "name": "platform-images",
            "artifacts": ["registry.example.com/platform/**"],
            "authorities": ["platform-key"],
        },
        {
            "name": "team-a-models",
            "artifacts": ["registry.example.com/team-a/**"],
            "namespaces": ["team-a*"],
            "authorities": ["team-a-ci"],
            "requiredAttestations": ["sbom", "datasets"],
        },
        {"name": "shared-models", "artifacts": ["registry.example.com/shared/**"], "authorities": ["vendor"]},
        {"name": "team-b-models", "artifacts": ["registry.example.com/team-b/**"], "authorities": ["vendor"]},
    ],
    "unmatchedArtifacts": "deny",
    "tenants": [
        {
            "name": "team-a",
            "namespaces": ["team-a", "team-a-*"],
            "registries": ["registry.example.com/team-a"],
            "identities": [
                {"issuer": CI_ISSUER, "identityRegex": r"https://github\.com/example/ml-pipelines/.+"}
            ],
            "authorities": ["team-a-ci"],
            "gpu": {
                "maxPerContainer": 4,
                "maxPerPod": 8,
                "products": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-L4", "NVIDIA-A100-SXM4-80GB"],
                "migProfiles": ["1g.10gb", "3g.40gb"],
                "nodePools": ["team-a-h100", "team-a-l4", "team-a-shared", "shared-mig"],
                "allowShared": True,
            },
            "licenses": ["Apache-2.0", "MIT", "LicenseRef-internal"],
            "personalData": False,
            "carbon": {"budgetKgCO2e": 5000, "usedKgCO2e": 1000},
        },
        {
            "name": "team-b",
            "namespaces": ["team-b"],
            "registries": ["registry.example.com/team-b"],
            "gpu": {"nodePools": ["team-b-a100"]},
        },
    ],
    "cluster": {
        "nodePools": [
            {
                "name": "team-a-h100",
                "labels": {POOL: "team-a-h100"},
                "gpuProduct": "NVIDIA-H100-80GB-HBM3",
                "tenant": "team-a",
            },
            {
                "name": "team-a-l4",
                "labels": {POOL: "team-a-l4"},
                "gpuProduct": "NVIDIA-L4",
                "tenant": "team-a",
            },
            {
                "name": "team-a-shared",
                "labels": {POOL: "team-a-shared"},
                "gpuProduct": "NVIDIA-L4",
                "sharing": "time-sliced",
                "tenant": "team-a",
            },
            {
                "name": "shared-mig",
                "labels": {POOL: "shared-mig"},
                "gpuProduct": "NVIDIA-A100-SXM4-80GB",
                "sharing": "mig",
            },
            {
                "name": "team-b-a100",
                "labels": {POOL: "team-b-a100"},
                "gpuProduct": "NVIDIA-A100-SXM4-80GB",
                "tenant": "team-b",
                "taints": [{"key": "guard.cnai.dev/tenant", "value": "team-b", "effect": "NoSchedule"}],
            },
        ],
    },
    "policy": {
        "allowedRegistries": ["registry.example.com"],
        "allowedBuilders": ["https://github.com/example/ml-pipelines/*"],
        "allowedSourceRepositories": ["git+https://github.com/example/*"],
    },
}

_CI = {"method": "keyless", "identity": CI_SUBJECT, "issuer": CI_ISSUER}

FACTS: dict[str, Any] = {
    "subject": {"name": "llama-3-8b", "digest": {"sha256": "2" * 64}, "kind": "oci"},
    "signers": [{"method": "keyless", "identity": CI_SUBJECT, "issuer": CI_ISSUER}],
    "licenses": ["Apache-2.0"],
    "model": {
        "name": "llama-3-8b",
        "version": "1.0.0",
        "architecture": "LlamaForCausalLM",
        "parameterCount": 8030261248,
        "precision": "bf16",
        "format": "safetensors",
        "task": "text-generation",
    },
    "datasets": [
        {
            "name": "support-tickets-2026",
            "uri": "s3://example-ml-data/tickets",
            "digests": {"sha256": "5" * 64},
            "licenses": ["LicenseRef-internal"],
            "relation": "fineTunedOn",
            "personalData": False,
            "sensitiveData": False,
            "approved": True,
            "approval": {"by": "data-governance@example.com", "at": "2026-03-02T10:15:00Z"},
        }
    ],
    "provenance": {
        "builder": CI_SUBJECT,
        "sourceRepository": "git+https://github.com/example/llama-ft",
        "sourceRevision": "8d3a1f0c2b4e6a8c0e2f4a6c8e0a2c4e6f8a0b2c",
        "buildType": "https://guard.cnai.dev/training/v1",
    },
    "energy": {"trainingKWh": 120.0, "co2eKg": 57.0},
    "attestations": [
        {"predicateType": "https://cyclonedx.org/bom", "name": "sbom", "status": "present", "signer": _CI},
        {
            "predicateType": "https://guard.cnai.dev/dataset-provenance/v1",
            "name": "datasets",
            "status": "present",
            "signer": _CI,
        },
        {
            "predicateType": "https://slsa.dev/provenance/v1",
            "name": "provenance",
            "status": "present",
            "signer": _CI,
        },
    ],
}

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "llama-server", "namespace": "team-a"},
    "spec": {
        "template": {
            "metadata": {"labels": {"app": "llama"}},
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "image": IMAGE,
                        "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
                        "volumeMounts": [{"name": "model", "mountPath": "/models"}],
                        "securityContext": {"allowPrivilegeEscalation": False},
                    }
                ],
                "nodeSelector": {POOL: "team-a-h100"},
                "volumes": [{"name": "model", "image": {"reference": MODEL, "pullPolicy": "IfNotPresent"}}],
            },
        }
    },
}


@dataclass
class Case:
    """One example: the object, its artifacts (as the webhook would report them) and the config."""

    obj: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEPLOYMENT))
    config: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(CONFIG))
    facts: dict[str, Any] | None = field(default_factory=lambda: copy.deepcopy(FACTS))
    model_ref: str = MODEL
    model_status: str = "verified"
    model_rule: str | None = "team-a-models"
    model_authorities: tuple[str, ...] = ("team-a-ci",)
    model_signer: Signer | None = field(default_factory=lambda: Signer("keyless", CI_SUBJECT, CI_ISSUER))
    model_reason: str | None = None
    claims: dict[str, dict[str, Any]] | None = None
    sources: list[Artifact] = field(default_factory=list)  # model sources guard cannot verify

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.obj["spec"]["template"]["spec"]
        return spec

    @property
    def server(self) -> dict[str, Any]:
        container: dict[str, Any] = self.pod["containers"][0]
        return container

    def gpus(self, resource: str, count: int) -> None:
        self.server["resources"] = {"requests": {resource: str(count)}, "limits": {resource: str(count)}}

    def artifacts(self) -> list[Artifact]:
        image = Artifact(
            ref=self.server["image"],
            source="container",
            used_by=("server",),
            locations=("spec.template.spec.containers[0].image",),
            verification=Verification(
                "verified",
                rule="platform-images",
                authorities=("platform-key",),
                signers=(Signer("key", PLATFORM_KEY),),
            ),
        )
        mounted = [
            c["name"]
            for c in self.pod["containers"]
            if any(m["name"] == "model" for m in c.get("volumeMounts", []))
        ]
        model = Artifact(
            ref=self.model_ref,
            source="imageVolume",
            used_by=tuple(mounted),
            verification=Verification(
                self.model_status,  # type: ignore[arg-type]
                reason=self.model_reason,
                rule=self.model_rule,
                authorities=self.model_authorities,
                signers=(self.model_signer,) if self.model_signer else (),
            ),
            facts=ModelFacts.model_validate(self.facts) if self.facts is not None else None,
            is_model=True,
            locations=("spec.template.spec.volumes[0].image.reference",),
        )
        return [image, model, *self.sources]

    def config_model(self) -> GuardConfig:
        return parse_config(self.config, "<example config>")

    def build(self) -> dict[str, Any]:
        template = self.obj["spec"]["template"]
        return build_input_for_object(
            self.obj,
            template["spec"],
            self.artifacts(),
            self.config_model(),
            template_metadata=template.get("metadata"),
            resolved_claims=self.claims,
        )


Mutation = Callable[[Case], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting a dotted path inside the case's facts / config / obj."""

    def apply(case: Case) -> None:
        head, *rest = path.split(".")
        target: Any = getattr(case, head)
        for key in rest[:-1]:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(rest[-1])] = value
        else:
            target[rest[-1]] = value

    return apply


def _all(*mutations: Mutation) -> Mutation:
    def apply(case: Case) -> None:
        for m in mutations:
            m(case)

    return apply


def _model_source(uri: str, location: str, allowed: tuple[str, ...] = ()) -> Mutation:
    """The server also declares a model source guard cannot verify (as the webhook reports it:
    unmatched, and allowed only when ``allowed`` prefixes cover it)."""

    def apply(case: Case) -> None:
        if allowed:
            case.config.setdefault("policy", {})["allowedModelSources"] = list(allowed)
        case.sources.append(
            Artifact(
                ref=uri,
                source="declared",
                used_by=("server",),
                verification=Verification("unmatched", reason=None if allowed else "no trust rule covers it"),
                is_model=True,
                scheme=uri.split("://", 1)[0],
                locations=(location,),
            )
        )

    return apply


def _attr(**values: Any) -> Mutation:
    def apply(case: Case) -> None:
        for k, v in values.items():
            setattr(case, k, v)

    return apply


def _gpus(resource: str, count: int) -> Mutation:
    return lambda case: case.gpus(resource, count)


def _extra_servers(n: int, gpus: int) -> Mutation:
    def apply(case: Case) -> None:
        case.gpus("nvidia.com/gpu", gpus)
        for i in range(n):
            extra = copy.deepcopy(case.server)
            extra["name"] = f"worker-{i}"
            case.pod["containers"].append(extra)

    return apply


def _dra(
    resolved: bool = True,
    mode: str = "ExactCount",
    declare: bool = True,
    device_class: str = "gpu.nvidia.com",
) -> Mutation:
    def apply(case: Case) -> None:
        case.server["resources"] = {"claims": [{"name": "gpu"}]}
        if declare:
            case.pod["resourceClaims"] = [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}]
        if resolved:
            request: dict[str, Any] = {"deviceClassName": device_class, "allocationMode": mode}
            if mode == "ExactCount":
                request["count"] = 1
            case.claims = {
                "gpu": {"spec": {"spec": {"devices": {"requests": [{"name": "gpu", "exactly": request}]}}}}
            }

    return apply


def _sidecars(n: int, gpus: int) -> Mutation:
    """The server with ``gpus`` GPUs and ``n`` sidecars (init containers with restartPolicy
    Always, running beside it) with as many."""

    def apply(case: Case) -> None:
        case.gpus("nvidia.com/gpu", gpus)
        case.pod["initContainers"] = [
            {**copy.deepcopy(case.server), "name": f"sidecar-{i}", "restartPolicy": "Always"}
            for i in range(n)
        ]

    return apply


def _dra_first_available(*subrequests: dict[str, Any]) -> Mutation:
    """The server's GPUs from a claim whose request lists alternatives (v1 firstAvailable)."""

    def apply(case: Case) -> None:
        _dra()(case)
        request = {"name": "gpu", "firstAvailable": list(subrequests)}
        case.claims = {"gpu": {"spec": {"spec": {"devices": {"requests": [request]}}}}}

    return apply


def _pools_told_apart_by_an_extra_label(case: Case) -> None:
    """Pools told apart by a label only one of them has: team-b's has team-a's and more, so a
    node selector on team-a's labels matches team-b's nodes too."""
    accelerator = "cloud.google.com/gke-accelerator"
    case.config["cluster"]["nodePools"] += [
        {"name": "gke-h100", "labels": {accelerator: "nvidia-h100-80gb"}, "tenant": "team-a"},
        {
            "name": "gke-h100-team-b",
            "labels": {accelerator: "nvidia-h100-80gb", "dedicated": "team-b"},
            "tenant": "team-b",
        },
    ]
    case.config["tenants"][0]["gpu"]["nodePools"].append("gke-h100")
    case.pod["nodeSelector"] = {accelerator: "nvidia-h100-80gb"}


def _attestation_failed(index: int, status: str, reason: str) -> Mutation:
    def apply(case: Case) -> None:
        assert case.facts is not None
        case.facts["attestations"][index].update(status=status, reason=reason, signer=None)

    return apply


def _product_affinity(product: str) -> Mutation:
    def apply(case: Case) -> None:
        case.pod.pop("nodeSelector", None)
        expression = {"key": "nvidia.com/gpu.product", "operator": "In", "values": [product]}
        required = {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}
        case.pod["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}

    return apply


_UNTRUSTED = _attr(
    model_ref=f"registry.example.com/shared/mistral-7b@{D2}",
    model_rule="shared-models",
    model_authorities=("vendor",),
    model_signer=Signer("keyless", "release@vendor.example", "https://accounts.google.com"),
)

_70B = _set("facts.model.parameterCount", 70553706496)

# policy -> (allowed cases, denied cases); names of denied cases start with the rule they trigger.
SAMPLES: dict[str, tuple[dict[str, Mutation], dict[str, Mutation]]] = {
    "supply_chain.signature": (
        {
            "verified": _all(),
            "unmatched-warn": _all(
                _attr(model_status="unmatched", model_rule=None),
                _set("config.unmatchedArtifacts", "warn"),
                _set("config.rules", CONFIG["rules"][:1]),
            ),
        },
        {
            "signature_invalid": _attr(
                model_status="failed", model_reason="signature does not verify with the certificate"
            ),
            "verification_error": _attr(
                model_status="error", model_reason="registry.example.com: connection refused"
            ),
            "no_trust_rule": _all(
                _attr(model_status="unmatched", model_rule=None), _set("config.rules", CONFIG["rules"][:1])
            ),
            "verified_under_other_rule": _attr(model_rule="shared-models"),
        },
    ),
    "supply_chain.attestations": (
        {
            "all-present": _all(),
            "sbom-not-required": _all(
                _set("config.policy.requireSbom", False),
                _set("facts.attestations", FACTS["attestations"][1:]),
                _set("config.rules.1.requiredAttestations", []),
            ),
        },
        {
            "required_attestation_missing": _attestation_failed(
                1, "invalid", "statement subject is another model"
            ),
            "sbom_missing": _all(
                _set("facts.attestations", FACTS["attestations"][1:]),
                _set("config.rules.1.requiredAttestations", ["datasets"]),
            ),
        },
    ),
    "supply_chain.mutable_tags": (
        {
            "pinned": _all(),
            "tag-warn": _all(
                _attr(model_ref="registry.example.com/team-a/llama-3-8b:v1"),
                _set("config.policy.mutableTags", "warn"),
            ),
        },
        {"mutable_tag": _attr(model_ref="registry.example.com/team-a/llama-3-8b:v1")},
    ),
    "supply_chain.model_sources": (
        {
            "oci-only": _all(),
            "allowed-prefix": _model_source(
                "s3://models/llama-3-8b", "spec.template.spec.containers[0].env[0].value", ("s3://models/",)
            ),
            "allowed-hf-pinned": _model_source(
                "hf://meta-llama/Meta-Llama-3-8B:" + "0123456789abcdef" * 2 + "01234567",
                "spec.template.spec.containers[0].args[1]",
                ("hf://meta-llama/",),
            ),
        },
        {
            "unverified_model_source": _model_source(
                "s3://models/llama-3-8b", "spec.template.spec.containers[0].env[0].value"
            ),
            "unverified_model_source--vllm-model-arg": _model_source(
                "hf://meta-llama/Meta-Llama-3-8B", "spec.template.spec.containers[0].args[1]"
            ),
            "unverified_model_source--storage-spec": _model_source(
                "kserve-storage://localMinIO/models/llama", "spec.predictor.model.storage"
            ),
        },
    ),
    "supply_chain.registries": (
        {"allowed-registry": _all()},
        {"registry_not_allowed": lambda c: c.server.update(image="docker.io/vllm/vllm-openai@" + D1)},
    ),
    "provenance.datasets": (
        {"approved": _all()},
        {
            "datasets_not_attested": _attestation_failed(
                1, "missing", "no dataset provenance attestation found"
            ),
            "dataset_not_approved": _all(
                _set("facts.datasets.0.approved", False), _set("facts.datasets.0.approval", None)
            ),
            "dataset_digest_missing": _set("facts.datasets.0.digests", {}),
        },
    ),
    "provenance.licenses": (
        {"apache": _all(), "mit": _set("facts.licenses", ["MIT"])},
        {
            "license_not_allowed": _set("facts.licenses", ["LicenseRef-llama3-community"]),
            "license_undeclared": _set("facts.licenses", []),
            "dataset_license_not_allowed": _set("facts.datasets.0.licenses", ["CC-BY-NC-4.0"]),
        },
    ),
    "provenance.builder": (
        {"ci-builder": _all()},
        {
            "builder_not_allowed": _set("facts.provenance.builder", "https://laptop.example/alice"),
            "source_repository_not_allowed": _set(
                "facts.provenance.sourceRepository", "git+https://gitlab.com/x/y"
            ),
        },
    ),
    "provenance.personal_data": (
        {
            "no-personal-data": _all(),
            "tenant-allows-with-basis": _all(
                _set("config.tenants.0.personalData", True),
                _set("facts.datasets.0.personalData", True),
                _set("facts.datasets.0.consentBasis", "contract"),
            ),
        },
        {
            "personal_data_not_allowed": _set("facts.datasets.0.personalData", True),
            "personal_data_not_allowed--undeclared": _set("facts.datasets.0.personalData", None),
            "sensitive_data_not_allowed": _set("facts.datasets.0.sensitiveData", True),
            "personal_data_without_basis": _all(
                _set("config.tenants.0.personalData", True), _set("facts.datasets.0.personalData", True)
            ),
        },
    ),
    "gpu.quota": (
        {"within-quota": _gpus("nvidia.com/gpu", 4)},
        {
            "gpu_per_container_exceeded": _gpus("nvidia.com/gpu", 6),
            "gpu_per_pod_exceeded": _extra_servers(2, 3),
            "gpu_per_pod_exceeded--sidecars": _sidecars(2, 4),
            "gpu_per_pod_exceeded--dra-first-available": _dra_first_available(
                {"name": "one", "deviceClassName": "gpu.nvidia.com", "count": 1},
                {"name": "many", "deviceClassName": "gpu.nvidia.com", "count": 16},
            ),
        },
    ),
    "gpu.requests_limits": (
        {"equal": _all()},
        {
            "gpu_request_not_limit": lambda c: c.server["resources"].update(
                requests={"nvidia.com/gpu": "1"}, limits={"nvidia.com/gpu": "2"}
            )
        },
    ),
    "gpu.products": (
        {
            "pinned-h100": _all(),
            "affinity-l4": _product_affinity("NVIDIA-L4"),
        },
        {
            "gpu_product_unconstrained": lambda c: c.pod.pop("nodeSelector"),
            "gpu_product_not_allowed": _set(
                "pod.nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
            ),
        },
    ),
    "gpu.mig": (
        {
            "allowed-profile": _all(
                _gpus("nvidia.com/mig-3g.40gb", 1), _set("pod.nodeSelector", {POOL: "shared-mig"})
            )
        },
        {
            "mig_profile_not_allowed": _all(
                _gpus("nvidia.com/mig-7g.80gb", 1), _set("pod.nodeSelector", {POOL: "shared-mig"})
            ),
            "mig_profile_unknown": _gpus("nvidia.com/mig-9g.99gb", 1),
            "mig_profile_not_allowed--dra": _all(
                _dra(device_class="mig.nvidia.com"),
                _set("config.tenants.0.gpu.migProfiles", []),
                _set("pod.nodeSelector", {POOL: "shared-mig"}),
            ),
        },
    ),
    "gpu.sharing": (
        {
            "dedicated-time-sliced-pool": _all(
                _gpus("nvidia.com/gpu.shared", 1), _set("pod.nodeSelector", {POOL: "team-a-shared"})
            ),
            "whole-gpu-on-dedicated-time-sliced-pool": _set("pod.nodeSelector", {POOL: "team-a-shared"}),
        },
        {
            "shared_gpu_not_allowed": _all(
                _gpus("nvidia.com/gpu.shared", 1),
                _set("config.tenants.0.gpu.allowShared", False),
                _set("pod.nodeSelector", {POOL: "team-a-shared"}),
            ),
            "shared_gpu_unpinned": _all(
                _gpus("nvidia.com/gpu.shared", 1), lambda c: c.pod.pop("nodeSelector")
            ),
            "shared_gpu_cross_tenant": _all(
                _gpus("nvidia.com/gpu.shared", 1), _set("pod.nodeSelector", {POOL: "shared-mig"})
            ),
            "shared_gpu_not_allowed--whole-gpu-on-time-sliced-pool": _all(
                _set("config.tenants.0.gpu.allowShared", False),
                _set("pod.nodeSelector", {POOL: "team-a-shared"}),
            ),
            "shared_gpu_cross_tenant--whole-gpu-on-time-sliced-pool": _all(
                _set("config.cluster.nodePools.3.sharing", "time-sliced"),
                _set("pod.nodeSelector", {POOL: "shared-mig"}),
            ),
        },
    ),
    "gpu.dra": (
        {"resolved-claim": _dra()},
        {
            "claim_unresolved": _dra(resolved=False),
            "claim_unbounded": _dra(mode="All"),
            "claim_unbounded--first-available": _dra_first_available(
                {"name": "one", "deviceClassName": "gpu.nvidia.com", "count": 1},
                {"name": "every", "deviceClassName": "gpu.nvidia.com", "allocationMode": "All"},
            ),
            "claim_undeclared": _dra(declare=False),
        },
    ),
    "gpu.fit": (
        {
            "8b-on-h100": _all(),
            "70b-on-two-h100": _all(_70B, _gpus("nvidia.com/gpu", 2)),
            "70b-int4-on-h100": _all(_70B, _set("facts.model.quantization", "int4")),
        },
        {
            "model_exceeds_gpu_memory": _70B,
            "model_exceeds_gpu_memory--mig": _all(
                _gpus("nvidia.com/mig-1g.10gb", 1), _set("pod.nodeSelector", {POOL: "shared-mig"})
            ),
            "model_exceeds_gpu_memory--l4": _all(
                _set("facts.model.precision", "fp32"), _set("pod.nodeSelector", {POOL: "team-a-l4"})
            ),
        },
    ),
    "tenancy.namespace": (
        {"tenant-namespace": _all()},
        {
            "namespace_without_tenant": _all(
                _set("obj.metadata.namespace", "ml-sandbox"), _set("config.rules.1.namespaces", ["*"])
            )
        },
    ),
    "tenancy.registries": (
        {"own-registry": _all()},
        {
            "model_registry_not_tenant": _UNTRUSTED,
            "cross_tenant_reference": _attr(
                model_ref=f"registry.example.com/team-b/secret-model@{D2}",
                model_rule="team-b-models",
                model_authorities=("vendor",),
            ),
        },
    ),
    "tenancy.signers": (
        {"tenant-ci": _all()},
        {"model_not_signed_by_tenant": _UNTRUSTED},
    ),
    "tenancy.node_pools": (
        {"own-pool": _all()},
        {
            "gpu_pool_unconstrained": _set(
                "pod.nodeSelector", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
            ),
            "gpu_pool_not_tenant": _set("pod.nodeSelector", {POOL: "team-b-a100"}),
            "pool_of_other_tenant": _set("pod.nodeSelector", {POOL: "team-b-a100"}),
            "pool_of_other_tenant--pool-with-more-labels": _pools_told_apart_by_an_extra_label,
            "tolerates_other_tenant_pool": _set(
                "pod.tolerations", [{"key": "guard.cnai.dev/tenant", "operator": "Equal", "value": "team-b"}]
            ),
            "tolerates_other_tenant_pool--everything": _set("pod.tolerations", [{"operator": "Exists"}]),
            "tolerates_other_tenant_pool--valueless-taint": _all(
                _set("config.cluster.nodePools.4.taints", [{"key": "dedicated", "effect": "NoSchedule"}]),
                _set("pod.tolerations", [{"key": "dedicated", "operator": "Equal"}]),
            ),
        },
    ),
    "tenancy.isolation": (
        {"unprivileged": _all()},
        {
            "privileged_container": _set(
                "server.securityContext", {"privileged": True, "allowPrivilegeEscalation": True}
            ),
            "host_path_volume": lambda c: c.pod["volumes"].append(
                {"name": "cache", "hostPath": {"path": "/var/cache/models"}}
            ),
            "host_namespace": _set("pod.hostNetwork", True),
        },
    ),
    "tenancy.sandbox": (
        {
            "tenant-signed": _all(),
            "untrusted-in-gvisor": _all(_UNTRUSTED, _set("pod.runtimeClassName", "gvisor")),
        },
        {"untrusted_model_unsandboxed": _UNTRUSTED},
    ),
    "carbon.budget": (
        {"small-job": _all()},
        {
            "carbon_budget_exceeded": _all(
                _extra_servers(1, 4),
                _set("obj.metadata.annotations", {"guard.cnai.dev/expected-duration-hours": "2000"}),
            )
        },
    ),
}


def case(mutation: Mutation) -> Case:
    c = Case()
    mutation(c)
    return c


def example_input(mutation: Mutation | None = None) -> dict[str, Any]:
    """The policy input of the base example (allowed by the whole library), optionally mutated."""
    return case(mutation or _all()).build()


def write_samples(root: Path) -> list[Path]:
    written = []
    for policy, (allowed, denied) in SAMPLES.items():
        bundle = policy.split(".")[0]
        name = policy.split(".")[1]
        for outcome, cases in (("allowed", allowed), ("denied", denied)):
            directory = root / bundle / "samples" / outcome
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.glob(f"{name}--*.json"):
                stale.unlink()
            for case_name, mutation in cases.items():
                path = directory / f"{name}--{case_name}.json"
                path.write_text(
                    json.dumps(example_input(mutation), indent=2, sort_keys=True) + "\n", encoding="utf-8"
                )
                written.append(path)
    return written


FIXTURES_HEADER = """# Generated by `python -m guard.policy.examples` (guard/policy/examples.py): do not edit.
# The base input (allowed by every policy) that the *_test.rego files patch with json.patch.
package guard.lib.fixtures

patched(ops) := json.patch(base, ops)

rules(violations) := {v.rule | some v in violations}

test_base_is_an_input if base.apiVersion == "guard.cnai.dev/policy-input/v1"

"""


def write_fixtures(root: Path) -> Path:
    """``<root>/lib/fixtures_test.rego``: the base input as a Rego value for the policy tests."""
    path = root / "lib" / "fixtures_test.rego"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps(example_input(), indent="\t", sort_keys=True)
    path.write_text(FIXTURES_HEADER + "base := " + body + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("policies")
    for p in [*write_samples(target), write_fixtures(target)]:
        print(p)
