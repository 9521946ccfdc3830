"""The ``admission`` section of guard's configuration (composed into ``GuardConfig``).

Everything the admission engine needs beyond trust rules and policies: the webhook's
``timeoutSeconds`` (the engine answers before it), the request body limit, exempt namespaces,
the verification cache, and extra kinds of workloads that carry model references.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from guard.configmodel import ConfigModel
from guard.configpath import ConfigPath

if TYPE_CHECKING:
    from guard.oci.referrers import ReferrerLimits


_PATH_RE = re.compile(r"^[A-Za-z0-9_\-]+(\.([A-Za-z0-9_\-]+|\*))*$")


def _check_path(path: str) -> str:
    if not _PATH_RE.match(path):
        raise ValueError(
            f"expected a dotted field path such as 'spec.template.spec' or 'spec.groups.*.template.spec' "
            f"(names and '*' separated by dots), found {path!r}"
        )
    return path


class KindSpec(ConfigModel):
    """Where a kind of object carries pod specs and model references.

    Paths are dotted field paths from the object's root; ``*`` matches every element of a list or
    every value of a mapping (``spec.workerGroupSpecs.*.template.spec``).
    """

    group: str = Field(description="API group ('' for the core group, e.g. 'apps', 'ray.io').")
    kind: str = Field(min_length=1, description="Kind, e.g. 'Deployment'.")
    pod_specs: tuple[str, ...] = Field(default=(), description="Paths to PodSpec objects.")
    pod_metadata: tuple[str, ...] = Field(
        default=(), description="Paths to pod template metadata (their annotations are read)."
    )
    references: tuple[str, ...] = Field(
        default=(),
        description="Paths to string fields holding a model or image reference (e.g. storageUri).",
    )
    model_ids: tuple[str, ...] = Field(
        default=(),
        description="Paths to string fields naming a model that, without a scheme, is a Hugging Face "
        "Hub repository id (vLLM production-stack's spec.model.modelURL).",
    )
    storage_specs: tuple[str, ...] = Field(
        default=(),
        description="Paths to KServe storage specs ({key, path, parameters, storageUri}): a model "
        "source without a URI.",
    )
    containers: tuple[str, ...] = Field(
        default=(),
        description="Paths to container-like objects outside pod specs (KServe's model spec, a "
        "TrainJob's trainer) whose env, command and args may declare a model source.",
    )

    @field_validator("pod_specs", "pod_metadata", "references", "model_ids", "storage_specs", "containers")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_path(p) for p in value)

    @model_validator(mode="after")
    def _something(self) -> KindSpec:
        if not (
            self.pod_specs
            or self.references
            or self.pod_metadata
            or self.model_ids
            or self.storage_specs
            or self.containers
        ):
            raise ValueError(
                f"kind {self.kind!r}: expected at least one of podSpecs, podMetadata, references, "
                f"modelIds, storageSpecs or containers"
            )
        return self


class CacheSettings(ConfigModel):
    """The verification cache: verdicts by (digest, trust-config hash)."""

    ttl_seconds: float = Field(default=300.0, gt=0, description="How long a successful verification holds.")
    negative_ttl_seconds: float = Field(
        default=10.0, ge=0, description="How long a verification failure is remembered (0: never)."
    )
    tag_ttl_seconds: float = Field(
        default=30.0, ge=0, description="How long a tag -> digest resolution is reused (0: never)."
    )
    max_entries: int = Field(default=10_000, gt=0, description="Entries kept before the oldest are evicted.")


class RegistrySettings(ConfigModel):
    """How the webhook reaches registries (credentials come from the docker config file)."""

    ca_file: ConfigPath | None = Field(
        default=None, description="PEM CA bundle for registries with a private CA."
    )
    docker_config: ConfigPath | None = Field(
        default=None,
        description="docker config.json with registry credentials (default: the usual places).",
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of one connect or one read from a registry."
    )
    # -- adversarial registries (guard.oci.transport) --
    deadline_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Total deadline of one registry operation: connect, TLS, auth and token exchange, "
        "redirects, retries and every read of the answer (a registry dripping bytes is cut here).",
    )
    min_bytes_per_second: float | None = Field(
        default=None,
        gt=0,
        description="When set, a streamed blob earns 1/minBytesPerSecond more time per byte "
        "received. Unset (the default): deadlineSeconds is the total, whatever the blob's size (the "
        "webhook reads only small blobs: bundles and attestations).",
    )
    redirect_hosts: tuple[str, ...] = Field(
        default=(),
        description="Blob-storage hosts (globs, '*' within one DNS label) a registry may redirect to, "
        "besides its own host, the hosts the trust rules name and the well-known ones (Docker Hub, "
        "GHCR, Quay, ECR).",
    )
    token_hosts: tuple[str, ...] = Field(
        default=(),
        description="Token servers a registry's Bearer realm may name besides its own host, the hosts "
        "the trust rules name and auth.docker.io for Docker Hub.",
    )
    allowed_networks: tuple[str, ...] = Field(
        default=(),
        description="CIDRs guard may connect to although they are link-local, metadata or private "
        "(e.g. an in-cluster blob store on 10.0.0.0/8 that a public registry redirects to).",
    )
    preconnect: bool = Field(
        default=True,
        description="Once ready, connect (DNS, TCP, TLS: one GET /v2/ without credentials) to each "
        "registry host the trust rules name (not globs, not mirrored; at most 16), so that the "
        "first admission there does not pay the handshake. A host that does not answer changes "
        "nothing: its first admission connects itself.",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress  # noqa: PLC0415

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as err:
                raise ValueError(f"expected a CIDR such as 10.0.0.0/8, found {network!r}") from err
        return value


class ReferrerSettings(ConfigModel):
    """How much of an artifact's referrers the webhook reads (``guard.oci.referrers
    .ReferrerLimits``). Anyone who can push to a repository can attach referrers: each number
    bounds the work one artifact can cause. Referrers are read newest first in registry order."""

    max_listed: int = Field(default=1000, gt=0, description="Entries of a referrers listing read.")
    max_signatures: int = Field(
        default=32, gt=0, description="Signature referrers tried per verification before denying."
    )
    max_attestations: int = Field(default=16, ge=0, description="Attestation referrers read per artifact.")
    max_per_predicate: int = Field(
        default=4, gt=0, description="Of those, attestation referrers read per predicate type."
    )

    def limits(self) -> ReferrerLimits:
        from guard.oci.referrers import ReferrerLimits  # noqa: PLC0415

        return ReferrerLimits(
            max_listed=self.max_listed,
            max_signatures=self.max_signatures,
            max_attestations=self.max_attestations,
            max_per_predicate=self.max_per_predicate,
        )


class AdmissionSettings(ConfigModel):
    """How the admission webhook decides."""

    mode: Literal["enforce", "warn"] = Field(
        default="enforce",
        description="warn: a request guard would deny is admitted, the reason sent as a warning and an "
        "audit annotation (a first install; metrics still count it denied). enforce: denials are refused.",
    )

    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=30,
        description="The webhook configuration's timeoutSeconds (Kubernetes: default 10, at most 30).",
    )
    deadline_margin_seconds: float = Field(
        default=1.5,
        ge=0,
        description="guard answers this long before timeoutSeconds, so its own deny reaches the API server.",
    )
    max_body_bytes: int = Field(
        default=3 * 1024 * 1024,
        gt=0,
        description="Largest AdmissionReview body accepted (object + oldObject can each be ~1.5 MiB).",
    )
    exempt_namespaces: tuple[str, ...] = Field(
        default=("kube-system",), description="Namespaces whose requests are allowed without checks."
    )
    annotations: tuple[str, ...] = Field(
        default=("models.guard.cnai.dev/references",),
        description="Annotation keys whose values list model references (comma or whitespace separated). "
        "The deprecated spelling models.guard.cnai.io/references is read too, with a warning.",
    )
    max_concurrent_verifications: int = Field(
        default=16, gt=0, description="Registry verifications run at once (per process)."
    )
    unknown_kinds: Literal["deny", "allow"] = Field(
        default="deny",
        description="A kind not in the kinds table: deny (fail closed) or allow with a warning.",
    )
    kinds: tuple[KindSpec, ...] = Field(
        default=(), description="Extra kinds (or overrides of built-in ones, by group and kind)."
    )
    fail_open_rules: tuple[str, ...] = Field(
        default=(),
        description="Names of trust rules whose artifacts are allowed with a warning when the registry "
        "cannot be reached in time (all others fail closed).",
    )
    max_references: int = Field(
        default=64,
        gt=0,
        description="Distinct artifact references one object may carry; an object with more is denied "
        "unverified (each first-seen reference costs registry round trips).",
    )
    policy_budget_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Time kept for policy evaluation before the deadline: verification gets the deadline "
        "minus this, so the same inputs always give the same decision (default: 0.5 s, or a quarter of "
        "the deadline when that is shorter).",
    )
    registry: RegistrySettings = RegistrySettings()
    cache: CacheSettings = CacheSettings()
    referrers: ReferrerSettings = ReferrerSettings()

    @model_validator(mode="after")
    def _deadline(self) -> AdmissionSettings:
        if self.deadline_seconds < 0.2:
            raise ValueError(
                f"deadlineMarginSeconds ({self.deadline_margin_seconds}) leaves less than 0.2 s of "
                f"timeoutSeconds ({self.timeout_seconds}) to decide; lower the margin"
            )
        if self.policy_budget >= self.deadline_seconds:
            raise ValueError(
                f"policyBudgetSeconds ({self.policy_budget}) leaves no time for verification "
                f"within guard's deadline ({self.deadline_seconds:g} s = timeoutSeconds - "
                f"deadlineMarginSeconds); lower it"
            )
        return self

    @property
    def deadline_seconds(self) -> float:
        """The engine's own deadline: below the webhook timeout by the margin."""
        return self.timeout_seconds - self.deadline_margin_seconds

    @property
    def policy_budget(self) -> float:
        """The time kept for policies (``policyBudgetSeconds`` or its default)."""
        if self.policy_budget_seconds is not None:
            return self.policy_budget_seconds
        return min(0.5, self.deadline_seconds / 4)

    @property
    def verification_seconds(self) -> float:
        """How long verification may take: the deadline less the policy budget."""
        return self.deadline_seconds - self.policy_budget
