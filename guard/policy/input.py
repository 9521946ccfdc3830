"""The policy input document: everything a policy may read, built in one place.

``build_input`` assembles the document described by ``policies/input.schema.json`` from an
admission request, a workload summary (``guard.policy.workload.summarize_pod_spec``), the
artifacts with their verification results and model facts, and the config (tenant, cluster facts,
library settings). Policies read only this document; nothing else reaches them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pydantic_core

from guard.attest.facts import ModelFacts
from guard.config import ClusterFacts, GuardConfig, Tenant
from guard.errors import UsageError
from guard.memo import keep
from guard.policy.cache import JsonConstant, JsonConstantList
from guard.policy.rules import parse_reference
from guard.policy.sources import allowed_by, source_parts
from guard.policy.workload import summarize_pod_spec

INPUT_API_VERSION = "guard.cnai.dev/policy-input/v1"

VerificationStatus = Literal["verified", "failed", "unmatched", "error"]
ArtifactSource = Literal[
    "container",
    "initContainer",
    "ephemeralContainer",
    "imageVolume",
    "storageUri",
    "annotation",
    "declared",
    "csiVolume",
    "storageSpec",
]


@dataclass(frozen=True)
class Signer:
    method: Literal["key", "certificate", "keyless"]
    identity: str
    issuer: str | None = None
    # which signature format verified (oms, cosign-bundle, cosign-legacy), and whether the
    # signature names the digest itself or the image index listing it; None when not known
    format: str | None = None
    signed_via: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "identity": self.identity, "issuer": self.issuer}
        if self.format:
            out["format"] = self.format
        if self.signed_via:
            out["signedVia"] = self.signed_via
        return out


@dataclass(frozen=True)
class Verification:
    """What verification established about one artifact.

    ``status``: ``verified`` (signed by the rule's authorities), ``failed`` (a signature or
    attestation check failed: ``reason`` says which), ``unmatched`` (no rule covers it), ``error``
    (verification could not run, e.g. the registry was down)."""

    status: VerificationStatus
    reason: str | None = None
    rule: str | None = None
    authorities: tuple[str, ...] = ()
    signers: tuple[Signer, ...] = ()
    fail_open: bool = False  # status error under a rule that fails open: admitted unverified


@dataclass(frozen=True)
class Artifact:
    """One artifact a workload brings in, where it is used, and what is known about it.

    ``scheme`` is ``oci`` for images and OCI artifacts (``ref`` without scheme), else the scheme
    of a model source guard cannot verify (``ref`` is then the whole URI); ``locations`` are the
    field paths it was found at."""

    ref: str
    source: ArtifactSource
    used_by: tuple[str, ...]
    verification: Verification
    facts: ModelFacts | Mapping[str, Any] | None = None
    is_model: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    scheme: str = "oci"
    locations: tuple[str, ...] = ()


def _names(artifact: Artifact, config: GuardConfig, namespace: str) -> dict[str, Any]:
    if artifact.scheme != "oci":
        parts = source_parts(artifact.ref)
        allowed = allowed_by(artifact.ref, config.policy.allowed_model_sources)
        return {
            "name": parts.name,
            "registry": parts.registry,
            "repository": parts.repository,
            "tag": parts.tag,
            "digest": None,
            "rule": artifact.verification.rule,
            "requiredAttestations": [],
            "allowedSource": allowed,
        }
    ref = parse_reference(artifact.ref)
    rule = config.match_rule(artifact.ref, namespace)
    return {
        "name": ref.name,
        "registry": ref.registry,
        "repository": ref.repository,
        "tag": ref.tag,
        "digest": ref.digest,
        "rule": rule.name if rule else artifact.verification.rule,
        "requiredAttestations": list(rule.required_attestations) if rule else [],
        "allowedSource": None,
    }


def _artifact(artifact: Artifact, config: GuardConfig, namespace: str) -> dict[str, Any]:
    facts = artifact.facts.to_json() if isinstance(artifact.facts, ModelFacts) else artifact.facts
    v = artifact.verification
    return {
        "ref": artifact.ref,
        **_names(artifact, config, namespace),
        "scheme": artifact.scheme,
        "locations": list(artifact.locations),
        "source": artifact.source,
        "usedBy": list(artifact.used_by),
        "isModel": artifact.is_model or facts is not None or artifact.scheme != "oci",
        "verification": {
            "status": v.status,
            "reason": v.reason,
            "rule": v.rule,
            "authorities": list(v.authorities),
            "signers": [s.to_json() for s in v.signers],
            **({"failOpen": True} if v.fail_open else {}),
        },
        "facts": dict(facts) if facts is not None else None,
        **dict(artifact.extra),
    }


class UsageLookup(Protocol):
    """Published measured usage (``guard.energy.usage.UsageStore``): the ``tenant.carbon`` fields
    saying which used figure is in force (``usedKgCO2e``, ``usedSource``, ``usageAsOf``,
    ``usageAgeSeconds``, ``usageStale``, ``usageProblem``)."""

    def carbon_fields(self, tenant: str, typed_used: float) -> dict[str, Any]: ...


def _carbon_input(tenant: Tenant, usage: UsageLookup | None) -> dict[str, Any] | None:
    if tenant.carbon is None:
        return None
    carbon: dict[str, Any] = {
        "budgetKgCO2e": tenant.carbon.budget_kg_co2e,
        "usedKgCO2e": tenant.carbon.used_kg_co2e,
    }
    if usage is not None:
        carbon.update(usage.carbon_fields(tenant.name, tenant.carbon.used_kg_co2e))
    return carbon


def tenant_input(tenant: Tenant, config: GuardConfig, usage: UsageLookup | None = None) -> dict[str, Any]:
    gpu = tenant.gpu
    return {
        "name": tenant.name,
        "namespaces": list(tenant.namespaces),
        "registries": list(tenant.registries),
        "identities": [
            {
                "issuer": i.issuer,
                "subject": i.identity,  # the policy input's names (policies read them)
                "subjectRegex": i.identity_regex,
                "keyFingerprint": i.key_fingerprint,
            }
            for i in tenant.identities
        ],
        "authorities": list(tenant.authorities),
        "gpu": {
            "maxPerContainer": gpu.max_per_container,
            "maxPerPod": gpu.max_per_pod,
            "products": list(gpu.products),
            "migProfiles": list(gpu.mig_profiles),
            "nodePools": list(gpu.node_pools),
            "allowShared": gpu.allow_shared,
        },
        "licenses": list(tenant.licenses if tenant.licenses is not None else config.policy.default_licenses),
        "personalData": tenant.personal_data,
        "carbon": _carbon_input(tenant, usage),
    }


def cluster_input(cluster: ClusterFacts) -> dict[str, Any]:
    return {
        "gpuProducts": {
            name: {"memoryGiB": p.memory_gib, "boardPowerW": p.board_power_w}
            for name, p in cluster.gpu_products.items()
        },
        "migProfiles": dict(cluster.mig_profiles),
        "nodePools": [
            {
                "name": p.name,
                "labels": dict(p.labels),
                "gpuProduct": p.gpu_product,
                "sharing": p.sharing,
                "tenant": p.tenant,
                "taints": [t.model_dump() for t in p.taints],
            }
            for p in cluster.node_pools
        ],
        "gridIntensityGPerKWh": cluster.grid_intensity_g_per_kwh,
        "defaultJobDurationHours": cluster.default_job_duration_hours,
    }


def settings_input(config: GuardConfig) -> dict[str, Any]:
    p = config.policy
    return {
        "requireSbom": p.require_sbom,
        "mutableTags": p.mutable_tags,
        "allowedRegistries": list(p.allowed_registries),
        "allowedModelSources": list(p.allowed_model_sources),
        "allowedBuilders": list(p.allowed_builders),
        "allowedSourceRepositories": list(p.allowed_source_repositories),
        "sandboxRuntimeClasses": list(p.sandbox_runtime_classes),
        "defaultLicenses": list(p.default_licenses),
        "unmatchedArtifacts": config.unmatched_artifacts,
    }


def request_input(request: Mapping[str, Any]) -> dict[str, Any]:
    """The admission request's fields policies may read (AdmissionReview v1 ``request``). A
    request without a namespace (a cluster-scoped object) or a name has "" there, as the input
    schema says: a null made the embedded engine refuse every message formatting it with ``%q``,
    failing the whole evaluation."""
    user = request.get("userInfo") or {}
    kind = request.get("kind") or {}
    return {
        "uid": request.get("uid", ""),
        "operation": request.get("operation", "CREATE"),
        "namespace": request.get("namespace") or "",
        "name": request.get("name") or "",
        "kind": {
            "group": kind.get("group", ""),
            "version": kind.get("version", "v1"),
            "kind": kind.get("kind", "Pod"),
        },
        "user": {"username": user.get("username", ""), "groups": list(user.get("groups") or [])},
        "dryRun": bool(request.get("dryRun", False)),
    }


_ARTIFACTS_KEPT = 1024  # artifacts whose part of the input is kept (all dropped when full)
_WORKLOADS_KEPT = 1024  # pod specs whose summary is kept (all dropped when full)
_WORKLOAD_KEY_BYTES = 16 * 1024  # a pod spec larger than this is summarized every time (memory)
_NAMED = frozenset({"kind", "name"})
_NAMESPACES_KEPT = 4096  # namespaces whose tenant is kept (all dropped when full)
_NAMESPACE_KEY_CHARS = 253  # a longer namespace (none is valid) is looked up every time


class InputConstants:
    """The parts of the policy input that depend on the config alone (``cluster``, ``settings``;
    per tenant, its static fields and ``otherTenants``), built once per config instead of for
    every request. The documents share these values: nothing may change them in place. They are
    ``JsonConstant``s, carrying their JSON text: the embedded engine does not serialize them again.
    A tenant's ``carbon`` reads the published usage, so it is built for every request (a tenant
    without a carbon budget is constant as a whole)."""

    def __init__(self, config: GuardConfig) -> None:
        self.config = config
        self.cluster = JsonConstant(cluster_input(config.cluster))
        self.settings = JsonConstant(settings_input(config))
        self._tenants: dict[int, tuple[dict[str, Any], JsonConstantList, JsonConstant | None]] = {}
        self._no_tenant = self._others(None)
        # an artifact's part of the input in a namespace, by the artifact's identity (the entry
        # keeps it alive): admission makes one Artifact for equal verdicts (its own memo)
        self._artifacts: dict[tuple[int, str], tuple[Artifact, JsonConstant]] = {}
        self._artifact_lists: dict[
            tuple[tuple[int, ...], str], tuple[tuple[Artifact, ...], JsonConstantList]
        ] = {}
        # the tenant of a namespace, in a tuple (None in it: no tenant owns the namespace)
        self._tenant_of: dict[str, tuple[Tenant | None]] = {}
        # a pod spec's summary without its name, by SHA-256 of the JSON of what it reads
        self._workloads: dict[bytes, dict[str, Any]] = {}

    def workload(
        self,
        pod_spec: Mapping[str, Any],
        *,
        kind: str,
        name: str,
        namespace: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        resolved_claims: Mapping[str, Mapping[str, Any]] | None,
    ) -> dict[str, Any]:
        """``summarize_pod_spec`` with the config's cluster: summarized once for the pods of a
        template (equal but for their names: the same JSON of everything else it reads), the
        name put in. What it returns shares its parts with the summaries of those pods: nothing
        may change them in place."""

        def summary(named: str) -> dict[str, Any]:
            return summarize_pod_spec(
                pod_spec,
                self.config.cluster,
                kind=kind,
                name=named,
                namespace=namespace,
                labels=labels,
                annotations=annotations,
                resolved_claims=resolved_claims,
            )

        try:
            text = pydantic_core.to_json([pod_spec, kind, namespace, labels, annotations, resolved_claims])
        except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
            text = b""  # not serializable: summarized (and refused) as it is
        if not text or len(text) > _WORKLOAD_KEY_BYTES:
            return summary(name)
        key = hashlib.sha256(text).digest()
        found = self._workloads.get(key)
        if found is None:
            found = keep(self._workloads, key, summary(""), _WORKLOADS_KEPT)
        # the summary's own order: kind, then name, then the rest
        return {"kind": found["kind"], "name": name, **{k: v for k, v in found.items() if k not in _NAMED}}

    def artifacts(self, artifacts: Sequence[Artifact], namespace: str) -> list[dict[str, Any]]:
        """The ``artifacts`` part of the input: ``artifact`` of each, as one constant list (its
        JSON and digest made once) for the same artifact objects."""
        if not artifacts:
            return []
        key = (tuple(map(id, artifacts)), namespace)
        found = self._artifact_lists.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], artifacts, strict=True)):
            return found[1]
        made = JsonConstantList(self.artifact(a, namespace) for a in artifacts)
        return keep(self._artifact_lists, key, (tuple(artifacts), made), _ARTIFACTS_KEPT)[1]

    def artifact(self, artifact: Artifact, namespace: str) -> JsonConstant:
        """``artifact``'s part of the input for a request in ``namespace``, built once per
        artifact object: an ``Artifact`` is immutable, and so must be what it holds (its facts)."""
        key = (id(artifact), namespace)
        found = self._artifacts.get(key)
        if found is not None and found[0] is artifact:
            return found[1]
        made = JsonConstant(_artifact(artifact, self.config, namespace))
        return keep(self._artifacts, key, (artifact, made), _ARTIFACTS_KEPT)[1]

    def _others(self, tenant: Tenant | None) -> JsonConstantList:
        tenants = self.config.tenants
        return JsonConstantList(
            {"name": t.name, "registries": list(t.registries)} for t in tenants if t is not tenant
        )

    def tenant_of(self, namespace: str) -> Tenant | None:
        """The config's tenant of ``namespace`` (None: no tenant owns it), asked once per namespace."""
        owner = self._tenant_of.get(namespace)
        if owner is None:
            owner = (self.config.tenant_for(namespace),)
            if len(namespace) <= _NAMESPACE_KEY_CHARS:
                keep(self._tenant_of, namespace, owner, _NAMESPACES_KEPT)
        return owner[0]

    def tenant(
        self, namespace: str, usage: UsageLookup | None
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """``(tenant, otherTenants)`` of the policy input for a request in ``namespace``."""
        tenant = self.tenant_of(namespace)
        if tenant is None:
            return None, self._no_tenant
        found = self._tenants.get(id(tenant))  # the config keeps its tenants alive
        if found is None:
            static = tenant_input(tenant, self.config)
            whole = JsonConstant(static) if static["carbon"] is None else None
            del static["carbon"]
            found = self._tenants[id(tenant)] = (static, self._others(tenant), whole)
        static, others, whole = found
        if whole is not None:  # no carbon budget: nothing of it changes with the usage
            return whole, others
        return {**static, "carbon": _carbon_input(tenant, usage)}, others


def build_input(
    *,
    request: Mapping[str, Any],
    workload: Mapping[str, Any],
    artifacts: Sequence[Artifact],
    config: GuardConfig,
    usage: UsageLookup | None = None,
    constants: InputConstants | None = None,
) -> dict[str, Any]:
    """The policy input for one admission request (see ``policies/input.schema.json``).
    ``constants``: the config's parts built once (``InputConstants(config)``), else built here."""
    req = request_input(request)
    namespace = req["namespace"] or str(workload.get("namespace", ""))
    if constants is None:
        constants = InputConstants(config)
    arts = constants.artifacts(artifacts, namespace)
    gpu_total = int(workload.get("gpu", {}).get("total", 0))
    tenant, others = constants.tenant(namespace, usage)
    return {
        "apiVersion": INPUT_API_VERSION,
        "request": req,
        "workload": {**workload, "ai": gpu_total > 0 or any(a["isModel"] for a in arts)},
        "artifacts": arts,
        "tenant": tenant,
        "otherTenants": others,
        "cluster": constants.cluster,
        "settings": constants.settings,
    }


def _object_field(value: Any, where: str) -> Mapping[str, Any]:
    """An object field of a Kubernetes object (whoever can reach the webhook wrote the bytes: the
    API server validates what it sends, a direct client need not)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: expected an object, found {type(value).__name__}")
    return value


def object_namespace(request_namespace: Any, metadata: Mapping[str, Any]) -> Any:
    """The namespace of an object's policy input (``str`` of it): the request's, else the
    object's, else ``default``."""
    return request_namespace or metadata.get("namespace") or "default"


def workload_name(metadata: Mapping[str, Any]) -> Any:
    """The workload name of an object's policy input (``str`` of it; a volatile field): its
    name, else the prefix its name is generated from."""
    return metadata.get("name") or metadata.get("generateName") or ""


def build_input_for_object(
    obj: Mapping[str, Any],
    pod_spec: Mapping[str, Any],
    artifacts: Sequence[Artifact],
    config: GuardConfig,
    *,
    request: Mapping[str, Any] | None = None,
    resolved_claims: Mapping[str, Mapping[str, Any]] | None = None,
    template_metadata: Mapping[str, Any] | None = None,
    usage: UsageLookup | None = None,
    constants: InputConstants | None = None,
) -> dict[str, Any]:
    """Convenience: a Kubernetes object plus its PodSpec (found by the caller) to a policy input.

    Annotations and labels of the pod template (``template_metadata``) override the object's own."""
    meta = _object_field(obj.get("metadata"), "metadata")
    tmeta = _object_field(template_metadata, "spec.template.metadata")
    labels = {
        **_object_field(meta.get("labels"), "metadata.labels"),
        **_object_field(tmeta.get("labels"), "spec.template.metadata.labels"),
    }
    annotations = {
        **_object_field(meta.get("annotations"), "metadata.annotations"),
        **_object_field(tmeta.get("annotations"), "spec.template.metadata.annotations"),
    }
    namespace = str(object_namespace((request or {}).get("namespace"), meta))
    if constants is None:
        constants = InputConstants(config)
    workload = constants.workload(
        pod_spec,
        kind=str(obj.get("kind", "Pod")),
        name=str(workload_name(meta)),
        namespace=namespace,
        labels=labels,
        annotations=annotations,
        resolved_claims=resolved_claims,
    )
    req = dict(request or {})
    req.setdefault("namespace", namespace)
    req.setdefault("name", str(meta.get("name", "")))
    api_version = str(obj.get("apiVersion", "v1"))
    group, _, version = api_version.rpartition("/")
    req.setdefault("kind", {"group": group, "version": version, "kind": str(obj.get("kind", "Pod"))})
    return build_input(
        request=req, workload=workload, artifacts=artifacts, config=config, usage=usage, constants=constants
    )
