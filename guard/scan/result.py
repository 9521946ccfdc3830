"""The scan result document: one JSON document per ``guard scan`` run.

It is the contract between the audit and whatever is made from it (``guard report``, the energy
scan, dashboards, ``guard scan merge``). Field names are camelCase on the wire (``apiVersion``,
``ownerChain``); the Python attributes are snake_case. Every model is frozen. The JSON Schema is
generated from these models and shipped as ``guard/data/scan/result.schema.json`` (``guard scan
--schema`` prints it; a test checks the shipped file equals the generated one).

Shape:

- ``scan``: who ran what, when, against which config and policy library, which sources listed
  which kinds (with LIST calls and 410 restarts), which kinds were not assessed and why, and
  whether the result is partial (an audit that could not look says so).
- ``policies``: the policy catalog of the run: each evaluated policy, its enforcement mode and
  the controls it maps to. With ``workloads[].evaluations`` a report computes, per control, how
  many workloads were assessed and how many passed.
- ``workloads[]``: one entry per top owner (a Deployment, not its ReplicaSets or pods), with its
  replicas (running pods: a weight, not repeated work), owner chain, AI or not, every artifact
  with its verification status and evidence, and which policies were evaluated with their result.
- ``findings[]``: everything wrong, each with a stable ``fingerprint`` (same finding, same id on
  every run) and ``firstSeen`` (carried over from ``--previous``).
- ``summary``: counts by severity, policy, tenant and namespace (always complete).
- ``energy``: filled by the energy scan (``guard.energy``, ``EnergySection``) when ``guard scan``
  is given ``--prometheus`` or ``--period`` / ``--since``; ``None`` otherwise.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from importlib import resources
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from guard.energy.models import EnergySection

API_VERSION: Final = "guard.cnai.dev/scan-result/v1"
SCHEMA_FILE = ("data", "scan", "result.schema.json")  # under the guard package (package data)

Severity = Literal["critical", "high", "medium", "low", "info"]
# most severe first; --fail-on compares by this order
SEVERITY_ORDER: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
VerificationStatus = Literal["verified", "failed", "unmatched", "error"]
Enforcement = Literal["deny", "warn", "dryrun"]
EvaluationResult = Literal["pass", "fail", "error"]
FindingCategory = Literal["verification", "policy", "drift", "recall", "scan"]
# forbidden / error / unknown-kind / malformed make the result partial; not-served (the cluster
# has no such API) and not-a-workload (a kind that runs nothing: Service, ConfigMap...) do not.
NotAssessedReason = Literal["forbidden", "not-served", "unknown-kind", "error", "malformed", "not-a-workload"]


class _Doc(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid")


# --- scan ----------------------------------------------------------------------------------------


class RbacRule(_Doc):
    """The RBAC rule the scanner's identity lacks (to paste into a ClusterRole)."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...] = ("list",)


class KindListing(_Doc):
    """What one source listed of one kind."""

    api_version: str = Field(description="e.g. 'apps/v1', 'v1', 'serving.kserve.io/v1beta1'.")
    kind: str
    objects: int = Field(ge=0, description="Objects listed (after namespace and shard filters).")
    list_calls: int = Field(default=0, ge=0, description="LIST requests made (0 for snapshot files).")
    restarts: int = Field(
        default=0,
        ge=0,
        description="Times the list restarted from the start after a 410 (expired continue token).",
    )
    resource_version: str | None = Field(
        default=None, description="The list's resourceVersion (consistent point in time), when served."
    )


class Source(_Doc):
    """One place objects came from: a cluster (context / in-cluster) or a snapshot file."""

    type: Literal["cluster", "snapshot"]
    name: str = Field(description="The kubeconfig context, 'in-cluster', or the snapshot file path.")
    server: str | None = Field(default=None, description="The API server URL (live sources).")
    listed: tuple[KindListing, ...] = ()


class NotAssessed(_Doc):
    """A kind (or objects) the scan could not assess, and why. Never silently skipped."""

    api_version: str | None = None
    kind: str
    reason: NotAssessedReason
    message: str
    missing_rule: RbacRule | None = Field(
        default=None, description="For 'forbidden': the RBAC rule to grant the scanner."
    )
    objects: int | None = Field(default=None, ge=0, description="Objects skipped, when known (snapshots).")
    source: str | None = None


class Shard(_Doc):
    index: int = Field(ge=0, description="0-based shard index (JOB_COMPLETION_INDEX).")
    count: int = Field(ge=1)


class ScanInfo(_Doc):
    id: str = Field(
        description="This run's id (random); reports and in-cluster Reports are labelled with it."
    )
    started: datetime
    finished: datetime
    guard_version: str
    config_hash: str = Field(description="sha256 of the effective (parsed) config, 'sha256:<hex>'.")
    policy_library_digest: str | None = Field(
        description="sha256 over the policy library's Rego modules; None when it lives in an OPA server."
    )
    sources: tuple[Source, ...]
    namespaces: tuple[str, ...] | None = Field(
        default=None, description="The --namespace scope; None for all namespaces."
    )
    shard: Shard | None = None
    merged_from: tuple[str, ...] = Field(
        default=(), description="Scan ids of the shard results `guard scan merge` joined (empty otherwise)."
    )
    not_assessed: tuple[NotAssessed, ...] = ()
    partial: bool = Field(
        description="True when something could not be looked at (a kind not assessed, an artifact in error)."
    )
    partial_reasons: tuple[str, ...] = ()
    list_restarts: int = Field(default=0, ge=0, description="410 restarts over all kinds and sources.")
    previous_scan: str | None = Field(
        default=None, description="Id of the --previous result first-seen times were taken from."
    )


# --- policies ------------------------------------------------------------------------------------


class PolicyInfo(_Doc):
    name: str = Field(description="<bundle>.<policy>")
    enforcement: Enforcement = Field(description="The configured mode: reported by the scan, not applied.")
    controls: tuple[str, ...] = Field(
        description="Controls the policy maps to (NIST AI RMF, EU AI Act, ISO 42001...)."
    )


# --- workloads -----------------------------------------------------------------------------------


class OwnerRef(_Doc):
    api_version: str
    kind: str
    name: str
    uid: str | None = None


class SignerEvidence(_Doc):
    method: Literal["key", "certificate", "keyless"]
    identity: str
    issuer: str | None = None
    bundle_digest: str | None = Field(
        default=None, description="sha256 of the Sigstore bundle that verified."
    )
    log_index: int | None = Field(default=None, description="Rekor log index (keyless).")


class RunningDigest(_Doc):
    """A digest pods actually run for an artifact (containerStatuses[].imageID), with the pod count."""

    digest: str
    pods: int = Field(ge=0)
    containers: tuple[str, ...] = ()


class ArtifactResult(_Doc):
    reference: str = Field(description="As written in the workload (oci:// stripped).")
    scheme: str = Field(description="'oci' or the URI scheme (s3, hf, pvc...).")
    used_by: tuple[str, ...] = Field(description="Containers (or field paths) that use it.")
    is_model: bool
    rule: str | None = Field(description="The trust rule that covers it; None when none does.")
    status: VerificationStatus
    reason: str | None = None
    digest: str | None = Field(default=None, description="The digest guard verified (tags resolved now).")
    resolved_from_tag: bool = False
    signers: tuple[SignerEvidence, ...] = ()
    layers: tuple[str, ...] = Field(default=(), description="Layer digests of the verified manifest.")
    running: tuple[RunningDigest, ...] = Field(
        default=(), description="Digests the running pods report; one that differs from `digest` is drift."
    )


class PolicyEvaluation(_Doc):
    """One policy evaluated on one workload: the basis of the per-control pass/fail view."""

    policy: str
    result: EvaluationResult
    findings: int = Field(default=0, ge=0)


class Workload(_Doc):
    id: str = Field(description="Stable key '<apiVersion>/<kind>/<namespace>/<name>'.")
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None = None
    tenant: str | None = None
    replicas: int = Field(
        ge=0, description="Running pods resolved to this workload (the weight of its template)."
    )
    owner_chain: tuple[OwnerRef, ...] = Field(
        default=(),
        description="From the top owner down to the objects that own the pods (e.g. Deployment, ReplicaSet).",
    )
    ai: bool = Field(description="An AI workload: requests GPUs or brings a model artifact.")
    exempt: bool = Field(
        default=False, description="In an exempt namespace (admission.exemptNamespaces): not evaluated."
    )
    gpus: int = Field(default=0, ge=0, description="GPUs requested per replica.")
    gpu_products: tuple[str, ...] = Field(
        default=(), description="GPU products the template asks for (node selector / affinity), if any."
    )
    pod_names: tuple[str, ...] = Field(
        default=(), description="Names of the running pods resolved to this workload (energy attribution)."
    )
    artifacts: tuple[ArtifactResult, ...] = ()
    evaluations: tuple[PolicyEvaluation, ...] = ()
    policy_error: str | None = Field(default=None, description="Why policies could not be evaluated, if so.")


# --- findings ------------------------------------------------------------------------------------


class ResourceRef(_Doc):
    api_version: str
    kind: str
    namespace: str
    name: str
    replicas: int = Field(ge=0)
    owner_chain: tuple[OwnerRef, ...] = ()


class Evidence(_Doc):
    reference: str | None = None
    digest: str | None = Field(default=None, description="The digest guard verified.")
    running_digest: str | None = Field(default=None, description="The digest pods run (drift).")
    signer_identity: str | None = None
    signer_issuer: str | None = None
    bundle_digest: str | None = None
    log_index: int | None = None
    recall: str | None = Field(default=None, description="The recall entry that matched (its id).")
    matched: str | None = Field(
        default=None, description="What the recall matched: manifest, layer or signer."
    )


class Finding(_Doc):
    workload_id: str = Field(description="The `workloads[].id` this finding is about.")
    fingerprint: str = Field(
        description="Stable id: sha256 of (workload id, category, policy, rule, container, artifact, "
        "subject); never of the message or a time. The same finding has the same fingerprint on every run."
    )
    category: FindingCategory
    resource: ResourceRef
    tenant: str | None = None
    container: str | None = None
    artifact: str | None = None
    rule: str
    policy: str | None = Field(
        default=None, description="<bundle>.<policy> for policy findings; guard.* otherwise."
    )
    severity: Severity
    enforcement: Enforcement | None = Field(
        default=None, description="The mode admission would apply (reported, not applied)."
    )
    message: str
    remediation: str | None = None
    evidence: Evidence = Evidence()
    controls: tuple[str, ...] = ()
    first_seen: datetime


# --- summary -------------------------------------------------------------------------------------


class Summary(_Doc):
    workloads: int = Field(ge=0)
    ai_workloads: int = Field(ge=0)
    pods: int = Field(ge=0)
    artifacts: int = Field(ge=0, description="Distinct (reference, rule) verified.")
    findings: int = Field(ge=0)
    by_severity: dict[str, int] = Field(
        description="Findings per severity (every severity present, 0 included)."
    )
    by_policy: dict[str, int] = Field(description="Findings per policy (guard.* for non-policy findings).")
    by_tenant: dict[str, int] = Field(description="Findings per tenant ('' for namespaces of no tenant).")
    by_namespace: dict[str, int]
    by_category: dict[str, int] = Field(description="Findings per category (verification, policy, drift...).")
    by_status: dict[str, int] = Field(description="Artifacts per verification status.")


class ScanResult(_Doc):
    api_version: Literal["guard.cnai.dev/scan-result/v1"] = API_VERSION
    kind: Literal["ScanResult"] = "ScanResult"
    scan: ScanInfo
    policies: tuple[PolicyInfo, ...] = ()
    workloads: tuple[Workload, ...] = ()
    findings: tuple[Finding, ...] = ()
    summary: Summary
    energy: EnergySection | None = Field(
        default=None,
        description="Filled by the energy scan (guard scan --prometheus / --period): energy per workload and "
        "tenant by method, CO2e, budgets and forecasts, energy findings; None otherwise.",
    )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"


# --- helpers -------------------------------------------------------------------------------------


def fingerprint(*parts: str | None) -> str:
    """A stable id from the identifying parts of a finding (never its message or time)."""
    text = json.dumps([p or "" for p in parts], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def generate_schema() -> dict[str, Any]:
    """The JSON Schema of the result document, generated from the models."""
    schema = ScanResult.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://guard.cnai.dev/schemas/scan-result/v1.json"
    return schema


def schema_text() -> str:
    return json.dumps(generate_schema(), indent=2, sort_keys=True) + "\n"


def shipped_schema_text() -> str:
    """The schema file shipped in the package (``guard scan --schema`` prints it)."""
    return resources.files("guard").joinpath(*SCHEMA_FILE).read_text(encoding="utf-8")
