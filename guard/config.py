"""guard's configuration: one pydantic tree, loaded and validated once, passed explicitly.

Sections owned by a capability live beside it (``guard.oci.settings``, ``guard.admission.settings``)
and are composed here, so that the whole file is validated in one go and an invalid value fails at
load with the dotted path of the bad field.
"""

from __future__ import annotations

import logging
import re
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from guard.admission.recalls import Recall
from guard.admission.settings import AdmissionSettings
from guard.configmodel import ConfigModel, camel_document
from guard.configpath import BASE_DIR_CONTEXT, ConfigPath
from guard.energy.settings import EnergySettings
from guard.errors import ConfigError, GuardError
from guard.oci.settings import RegistryHost, registry_problems
from guard.policy.settings import PolicySettings
from guard.textfile import read_user_text

if TYPE_CHECKING:
    from guard.signing.types import Verifier


log = logging.getLogger(__name__)


_IDENTITY_RENAMES = {"subject": "identity", "subject_regex": "identity_regex"}

# --- trust: authorities and the rules that map artifacts to them ----------------------------


def _valid_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression: {err}") from err
    return value


class _AuthorityBase(ConfigModel):
    """Who may sign. ``to_verifier()`` builds the guard.signing verifier (imported lazily)."""

    @abstractmethod
    def to_verifier(self) -> Verifier:
        """The verifier for this authority (each kind defines it)."""


class KeyAuthority(_AuthorityBase):
    """A public key (PEM file). Signatures made with the matching private key are trusted."""

    renamed: ClassVar[Mapping[str, str]] = {"public_key": "key"}
    kind: Literal["key"]
    key: ConfigPath = Field(description="The public key (PEM file); `public_key` is its deprecated spelling.")

    def to_verifier(self) -> Verifier:
        from guard.signing import KeyVerifier  # noqa: PLC0415

        verifier: Verifier = KeyVerifier.from_file(self.key)
        return verifier


class CertificateAuthority(_AuthorityBase):
    """Certificate roots (PEM bundle): signatures whose chain leads to one of them are trusted."""

    kind: Literal["certificate"]
    roots: ConfigPath

    def to_verifier(self) -> Verifier:
        from guard.signing import CertificateVerifier  # noqa: PLC0415

        verifier: Verifier = CertificateVerifier.from_file(self.roots)
        return verifier


class KeylessAuthority(_AuthorityBase):
    """A Sigstore keyless identity: the OIDC issuer plus the signer identity (the certificate's
    SAN), exact or as a regex (``subject`` / ``subject_regex`` are the deprecated spellings)."""

    renamed: ClassVar[Mapping[str, str]] = _IDENTITY_RENAMES
    kind: Literal["keyless"]
    issuer: str = Field(min_length=1)
    identity: str | None = None
    identity_regex: str | None = None
    trust_config: ConfigPath | None = None
    offline: bool = False

    @model_validator(mode="after")
    def _one_identity(self) -> KeylessAuthority:
        if (self.identity is None) == (self.identity_regex is None):
            raise ValueError("give exactly one of identity or identityRegex")
        return self

    _check_regex = field_validator("identity_regex")(_valid_regex)

    def to_verifier(self) -> Verifier:
        from guard.signing import SigstoreVerifier  # noqa: PLC0415

        verifier: Verifier = SigstoreVerifier(
            issuer=self.issuer,
            identity=self.identity,
            identity_regex=self.identity_regex,
            trust_config=self.trust_config,
            offline=self.offline,
        )
        return verifier


Authority = Annotated[KeyAuthority | CertificateAuthority | KeylessAuthority, Field(discriminator="kind")]

UnmatchedAction = Literal["deny", "warn", "allow"]
EnforcementAction = Literal["deny", "warn", "dryrun"]


class Rule(ConfigModel):
    """Artifacts (globs over ``registry/repository``, or the full reference when the glob holds a
    tag or digest) in namespaces (globs) must be signed by one of (``any``) or all of the named
    authorities, and carry the required attestations (predicate types or short names)."""

    name: str = Field(min_length=1)
    artifacts: tuple[str, ...] = Field(min_length=1)
    namespaces: tuple[str, ...] = ("*",)
    authorities: tuple[str, ...] = Field(min_length=1)
    require: Literal["any", "all"] = "any"
    required_attestations: tuple[str, ...] = ()
    # Predicate types that count as signatures under this rule, besides OMS model signatures and
    # cosign's https://sigstore.dev/cosign/sign/v1. Any other statement is an attestation, never
    # a signature, whoever signed it.
    signature_predicates: tuple[str, ...] = ()
    # Digest pinning by the mutating webhook (/mutate) and `guard pin`: top-level pins references
    # by tag in the object guard sees unless a controller of the kind table owns it; pods-only pins
    # them in Pods only (owned or not); off leaves them as written.
    pin: Literal["off", "pods-only", "top-level"] = "top-level"


# --- tenants and cluster facts ----------------------------------------------------------------


class TenantIdentity(ConfigModel):
    """A signer a tenant owns: a keyless issuer plus identity / identity regex, or a key
    fingerprint (``subject`` / ``subject_regex`` are the deprecated spellings)."""

    renamed: ClassVar[Mapping[str, str]] = _IDENTITY_RENAMES
    issuer: str | None = None
    identity: str | None = None
    identity_regex: str | None = None
    key_fingerprint: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _shape(self) -> TenantIdentity:
        keyless = self.identity is not None or self.identity_regex is not None
        if keyless == (self.key_fingerprint is not None):
            raise ValueError("give either keyFingerprint, or issuer with identity or identityRegex")
        if keyless and (self.issuer is None or (self.identity is None) == (self.identity_regex is None)):
            raise ValueError("a keyless identity needs issuer and exactly one of identity or identityRegex")
        return self

    _check_regex = field_validator("identity_regex")(_valid_regex)


class GpuQuota(ConfigModel):
    """What a tenant's workloads may ask of GPUs. ``None`` caps mean no cap; empty lists mean
    none allowed for MIG profiles and shared GPUs, any known product for ``products``."""

    max_per_container: int | None = Field(default=None, ge=0)
    max_per_pod: int | None = Field(default=None, ge=0)
    products: tuple[str, ...] = ()
    mig_profiles: tuple[str, ...] = ()
    node_pools: tuple[str, ...] = ()
    allow_shared: bool = False


class CarbonBudget(ConfigModel):
    """A tenant's carbon budget for the current period, in kg CO2e (and optionally kWh).
    ``usedKgCO2e`` is the typed figure admission uses when no measured usage is published
    (``energy.usageFile``, written by ``guard energy --publish-usage``)."""

    budget_kg_co2e: float = Field(ge=0)
    used_kg_co2e: float = Field(default=0.0, ge=0)
    budget_kwh: float | None = Field(default=None, ge=0)
    period: Literal["month", "quarter", "year"] = "month"


class Tenant(ConfigModel):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    namespaces: tuple[str, ...] = Field(min_length=1)
    registries: tuple[str, ...] = ()
    identities: tuple[TenantIdentity, ...] = ()
    authorities: tuple[str, ...] = ()
    gpu: GpuQuota = Field(default_factory=GpuQuota)
    licenses: tuple[str, ...] | None = None
    personal_data: bool = False
    carbon: CarbonBudget | None = None


class GpuProduct(ConfigModel):
    """A GPU product. ``embodiedKgCO2e`` (user-supplied; none shipped) and ``lifespanYears``
    give SCI's embodied share M = TE x time reserved / lifespan x share reserved."""

    memory_gib: float = Field(gt=0)
    board_power_w: float = Field(gt=0)
    embodied_kg_co2e: float | None = Field(default=None, ge=0)
    lifespan_years: float = Field(default=4.0, gt=0)


def _default_gpu_products() -> dict[str, GpuProduct]:
    # Product names as GPU feature discovery labels them (nvidia.com/gpu.product); board power
    # from the vendors' product briefs.
    return {
        "NVIDIA-H100-80GB-HBM3": GpuProduct(memory_gib=80, board_power_w=700),
        "NVIDIA-H100-PCIe": GpuProduct(memory_gib=80, board_power_w=350),
        "NVIDIA-A100-SXM4-80GB": GpuProduct(memory_gib=80, board_power_w=400),
        "NVIDIA-A100-SXM4-40GB": GpuProduct(memory_gib=40, board_power_w=400),
        "NVIDIA-L4": GpuProduct(memory_gib=24, board_power_w=72),
    }


def _default_mig_profiles() -> dict[str, float]:
    names = [
        "1g.5gb",
        "1g.10gb",
        "1g.12gb",
        "1g.20gb",
        "1g.24gb",
        "2g.10gb",
        "2g.20gb",
        "2g.24gb",
        "3g.20gb",
        "3g.40gb",
        "3g.47gb",
        "4g.20gb",
        "4g.40gb",
        "4g.47gb",
        "7g.40gb",
        "7g.80gb",
        "7g.94gb",
    ]
    return {name: float(name.split(".")[1].removesuffix("gb")) for name in names}


class Taint(ConfigModel):
    """A taint the pool's nodes carry (as in a Node's ``spec.taints``)."""

    key: str = Field(min_length=1)
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class NodePool(ConfigModel):
    """A pool of nodes: the labels that select it, the taints that keep others off, its GPU
    product, how its GPUs are shared, and the tenant it is dedicated to (``None``: shared)."""

    name: str = Field(min_length=1)
    labels: dict[str, str] = Field(min_length=1)
    taints: tuple[Taint, ...] = ()
    gpu_product: str | None = None
    sharing: Literal["exclusive", "time-sliced", "mig"] = "exclusive"
    tenant: str | None = None


class ClusterFacts(ConfigModel):
    gpu_products: dict[str, GpuProduct] = Field(default_factory=_default_gpu_products)
    mig_profiles: dict[str, float] = Field(default_factory=_default_mig_profiles)
    node_pools: tuple[NodePool, ...] = ()
    grid_intensity_g_per_kwh: float = Field(default=475.0, gt=0)
    default_job_duration_hours: float = Field(default=24.0, gt=0)


class GuardConfig(ConfigModel):
    """The root of guard's configuration file."""

    version: Literal[1] = 1
    authorities: dict[str, Authority] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    unmatched_artifacts: UnmatchedAction = "deny"
    tenants: tuple[Tenant, ...] = ()
    cluster: ClusterFacts = Field(default_factory=ClusterFacts)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    admission: AdmissionSettings = AdmissionSettings()
    recalls: tuple[Recall, ...] = Field(
        default=(), description="Recalled digests and signers: denied at admission, reported by guard scan."
    )
    energy: EnergySettings = Field(default_factory=EnergySettings)
    registries: tuple[RegistryHost, ...] = Field(
        default=(),
        description="Per registry host: a local mirror (an OCI layout directory per repository) "
        "read instead of the registry, e.g. in an air-gapped cluster.",
    )

    def reference_errors(self) -> list[tuple[str, str]]:
        """Cross-references pydantic cannot check field by field: ``(path, problem)`` pairs."""
        problems: list[tuple[str, str]] = []
        known = sorted(self.authorities)

        def unknown(name: str) -> str:
            return f"unknown authority {name!r} (known: {known})"

        rule_names = [r.name for r in self.rules]
        for i, rule in enumerate(self.rules):
            if rule_names.count(rule.name) > 1:  # rules are named in messages and failOpenRules
                problems.append((f"rules.{i}.name", f"rule {rule.name!r} is defined more than once"))
            for j, name in enumerate(rule.authorities):
                if name not in self.authorities:
                    problems.append((f"rules.{i}.authorities.{j}", unknown(name)))
        problems.extend(registry_problems(self.registries))
        tenant_names = [t.name for t in self.tenants]
        pools = {p.name for p in self.cluster.node_pools}
        for i, tenant in enumerate(self.tenants):
            if tenant_names.count(tenant.name) > 1:
                problems.append((f"tenants.{i}.name", f"tenant {tenant.name!r} is defined more than once"))
            for j, name in enumerate(tenant.authorities):
                if name not in self.authorities:
                    problems.append((f"tenants.{i}.authorities.{j}", unknown(name)))
            for j, pool in enumerate(tenant.gpu.node_pools):
                if pool not in pools:
                    problem = f"unknown node pool {pool!r} (known: {sorted(pools)})"
                    problems.append((f"tenants.{i}.gpu.nodePools.{j}", problem))
            for j, profile in enumerate(tenant.gpu.mig_profiles):
                if profile not in self.cluster.mig_profiles:
                    problems.append((f"tenants.{i}.gpu.migProfiles.{j}", f"unknown MIG profile {profile!r}"))
        for i, node_pool in enumerate(self.cluster.node_pools):
            if node_pool.tenant is not None and node_pool.tenant not in tenant_names:
                problem = f"unknown tenant {node_pool.tenant!r} (known: {tenant_names})"
                problems.append((f"cluster.nodePools.{i}.tenant", problem))
        return problems

    def match_rule(self, artifact_ref: str, namespace: str) -> Rule | None:
        """The most specific rule for an artifact in a namespace (see guard.policy.rules)."""
        from guard.policy.rules import match_rule  # noqa: PLC0415

        return match_rule(self.rules, artifact_ref, namespace)

    def tenant_for(self, namespace: str) -> Tenant | None:
        """The tenant owning a namespace (exact names win over globs; the first tenant wins ties)."""
        from guard.policy.rules import tenant_for_namespace  # noqa: PLC0415

        return tenant_for_namespace(self.tenants, namespace)


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per bad field: ``source: path.to.field: what was expected (found: value)``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(part) for part in e["loc"]) or "(root)"
        found = e.get("input")
        shown = repr(found)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"{source}: {loc}: {e['msg']} (found: {shown})")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>", *, base_dir: Path | None = None) -> GuardConfig:
    """Validate an already-parsed document (dict) into a GuardConfig. Relative paths in it are made
    absolute against ``base_dir`` (the config file's directory) when one is given."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, found {type(data).__name__}")
    try:
        context = {BASE_DIR_CONTEXT: base_dir} if base_dir is not None else None
        config = GuardConfig.model_validate(camel_document(data, GuardConfig, source), context=context)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from err
    problems = config.reference_errors()
    if problems:
        raise ConfigError("\n".join(f"{source}: {path}: {problem}" for path, problem in problems))
    return config


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader refusing a key given twice in one mapping: YAML keeps the last one silently,
    so a second ``rules:`` or ``policy:`` block would replace the first unnoticed."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (expected each key once)",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path | None) -> GuardConfig:
    """Load and validate a YAML (or JSON) config file; ``None`` gives the embedded defaults."""
    if path is None:
        return GuardConfig()
    text = read_user_text(path, what="config file", expected="UTF-8 YAML", error=ConfigError)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return parse_config(data, str(path), base_dir=path.resolve().parent)


def authority_verifiers(config: GuardConfig) -> dict[str, Verifier]:
    """Every authority's verifier, by name: loads its public key, certificate roots or Sigstore
    trust config now (the public-good trust root stays lazy). A file that is missing or unusable is
    a ConfigError naming the authority, so a server can refuse it before it starts listening."""
    verifiers: dict[str, Verifier] = {}
    for name, authority in config.authorities.items():
        try:
            verifiers[name] = authority.to_verifier()
        except (GuardError, OSError) as err:
            raise ConfigError(
                f"cannot load the trust roots of the config's authorities: authorities.{name}: {err}"
            ) from err
    return verifiers
