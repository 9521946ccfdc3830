"""The ``policy`` section of guard's config: which engine evaluates the library, and how each
policy's violations are enforced.

The engine is chosen by a pydantic discriminated union on ``engine.kind``; each kind has its own
implementation file (``guard.policy.embedded``, ``guard.policy.opa``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from guard.configmodel import ConfigModel
from guard.configpath import ConfigPath

_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")
_POLICY_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")


def _source_prefix(prefix: str) -> str:
    scheme = prefix.split("://", 1)[0].lower() if "://" in prefix else None
    if scheme is None or not _SCHEME.match(scheme) or "*" in prefix:
        raise ValueError(
            f"expected a source prefix with its scheme, such as 's3://models/' or 'hf://' (no globs), "
            f"found {prefix!r}"
        )
    if scheme in ("oci", "oci+native", "oci+fetch", "kit"):
        raise ValueError(
            f"{prefix!r} is an OCI source: guard verifies those under the trust rules, it cannot be "
            f"allowed unverified"
        )
    return prefix


class EmbeddedEngineSettings(ConfigModel):
    """Evaluate in-process with regorus (the default).

    ``decisionCacheSize``: decisions kept for inputs already judged, keyed by the whole input
    (less the request uid when no policy reads it), and as many sets of the policies that read
    neither the uid nor the workload's name, keyed by the input without those (a ReplicaSet's new
    pod is evaluated on the policies naming it only). Once those sets answer a template's pod and
    the policies naming it find nothing, the webhook keeps the template's result (up to 1,024
    templates) and answers its next pods from it. 0 turns all of them off. A library that calls a
    clock, randomness, the network or the runtime (``time.now_ns``, ``rand.intn``,
    ``uuid.rfc4122``, ``http.send``, ``opa.runtime``: by name or through an index of it, as
    ``time["now_ns"]()``) is never cached."""

    kind: Literal["embedded"] = "embedded"
    decision_cache_size: int = Field(default=4096, ge=0, le=1_000_000)


class OpaEngineSettings(ConfigModel):
    """Ask an OPA server over its Data API (``POST /v1/data/<packageRoot>``).

    HTTPS is always verified: against the system trust store, plus ``caFile`` when given."""

    kind: Literal["opa"]
    url: str = Field(pattern=r"^https?://[^/\s:]+(:\d{1,5})?/?$")
    timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    package_root: str = Field(default="guard", pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
    token_file: ConfigPath | None = None
    ca_file: ConfigPath | None = None


EngineSettings = Annotated[EmbeddedEngineSettings | OpaEngineSettings, Field(discriminator="kind")]


class PolicySettings(ConfigModel):
    """How policies are evaluated and enforced.

    ``enforcement`` maps ``<bundle>`` or ``<bundle>.<policy>`` (e.g. ``gpu`` or ``gpu.fit``) to
    ``deny`` / ``warn`` / ``dryrun``; the most specific key wins, then ``defaultEnforcement``.
    The remaining fields are library settings handed to policies as ``input.settings``.
    """

    engine: EngineSettings = Field(default_factory=EmbeddedEngineSettings)
    directory: ConfigPath | None = None
    default_enforcement: Literal["deny", "warn", "dryrun"] = "deny"
    enforcement: dict[str, Literal["deny", "warn", "dryrun"]] = Field(default_factory=dict)
    require_sbom: bool = True
    mutable_tags: Literal["deny", "warn"] = "deny"
    allowed_registries: tuple[str, ...] = ()
    # Model sources guard cannot verify (s3://, hf://, pvc://, ...) that are allowed anyway, as
    # prefixes (guard.policy.sources); every other one is denied (supply_chain.model_sources).
    allowed_model_sources: tuple[Annotated[str, AfterValidator(_source_prefix)], ...] = ()
    allowed_builders: tuple[str, ...] = ()
    allowed_source_repositories: tuple[str, ...] = ()
    default_licenses: tuple[str, ...] = (
        "Apache-2.0",
        "MIT",
        "BSD-3-Clause",
        "BSD-2-Clause",
        "CC-BY-4.0",
        "CC0-1.0",
    )
    sandbox_runtime_classes: tuple[str, ...] = ("gvisor", "kata", "kata-qemu", "kata-clh")

    @field_validator("enforcement")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _POLICY_KEY.match(key):
                raise ValueError(f"enforcement key {key!r} must be '<bundle>' or '<bundle>.<policy>'")
        return value

    def enforcement_for(self, policy: str) -> Literal["deny", "warn", "dryrun"]:
        """The action for ``<bundle>.<policy>``: exact key, then bundle key, then the default."""
        if policy in self.enforcement:
            return self.enforcement[policy]
        bundle = policy.split(".", 1)[0]
        return self.enforcement.get(bundle, self.default_enforcement)
