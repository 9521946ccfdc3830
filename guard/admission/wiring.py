"""The real implementations of the admission seams, built from the config.

- ``ConfigTrustRules``: the config's rules (``GuardConfig.match_rule``), with a hash of each rule's
  trust configuration for the verification cache and the ``admission.fail_open_rules``.
- ``OciReferenceVerifier``: resolves tags and verifies signatures with ``guard.oci.verify_oci``
  (no weight is downloaded), then verifies the attached attestations into model facts
  (``guard.attest.collect_facts``) and checks the attestations the rule requires.
- ``LibraryPolicyEvaluator``: builds the policy input (``guard.policy.input``) for each pod spec
  of the object and evaluates the policy library with the configured engine.

``build_engine(config, metrics)`` loads all of it (trust roots, policies) and returns the engine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from guard.admission.kinds import KindTable
from guard.admission.metrics import AdmissionMetrics
from guard.admission.outcome import ArtifactVerdict
from guard.admission.pipeline import AdmissionEngine
from guard.admission.ports import PolicyResult, RuleMatch, VerifiedArtifact, Violation
from guard.admission.references import walk
from guard.admission.review import AdmissionRequest
from guard.config import GuardConfig, Rule
from guard.errors import AttestationError, ConfigError, GuardError, SignatureMismatch, UsageError
from guard.signing.types import SignerInfo, SigningMethod, Verifier

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from guard.oci.registry import RegistryAccess
    from guard.oci.types import Descriptor, FetchedManifest, Opener, ProgressCallback, Store
    from guard.policy.engine import PolicyEngine
    from guard.policy.input import Artifact


# --- trust rules -------------------------------------------------------------------------------


def trust_hash(config: GuardConfig, rule: Rule) -> str:
    """A digest of everything verifying under ``rule`` depends on."""
    doc = {
        "rule": rule.model_dump(mode="json"),
        "authorities": {
            name: config.authorities[name].model_dump(mode="json")
            for name in rule.authorities
            if name in config.authorities
        },
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class ConfigTrustRules:
    def __init__(self, config: GuardConfig) -> None:
        self._config = config
        self._hashes = {rule.name: trust_hash(config, rule) for rule in config.rules}
        self._fail_open = frozenset(config.admission.fail_open_rules)

        self.match = functools.lru_cache(maxsize=4096)(self._match)  # type: ignore[method-assign]

    def match(self, reference: str, namespace: str) -> RuleMatch:
        """The rule for ``reference`` in ``namespace`` (memoized: the config is immutable)."""
        return self._match(reference, namespace)

    def _match(self, reference: str, namespace: str) -> RuleMatch:
        unmatched = RuleMatch(rule=None, trust_hash="", unmatched=self._config.unmatched_artifacts)
        try:
            rule = self._config.match_rule(reference, namespace)
        except UsageError:
            return unmatched  # not a reference guard can parse: the default applies
        if rule is None:
            return unmatched
        return RuleMatch(
            rule=rule.name, trust_hash=self._hashes[rule.name], fail_open=rule.name in self._fail_open
        )


# --- registry verification -------------------------------------------------------------------


class AnyOfVerifier:
    """A Verifier that accepts a bundle one of its verifiers accepts (``require: any``)."""

    def __init__(self, verifiers: Sequence[Verifier]) -> None:
        self._verifiers = tuple(verifiers)
        self.method: SigningMethod = verifiers[0].method

    def verify_bundle(self, bundle: Mapping[str, Any]) -> tuple[bytes, SignerInfo]:
        errors: list[GuardError] = []
        for verifier in self._verifiers:
            try:
                return verifier.verify_bundle(bundle)
            except GuardError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise SignatureMismatch(
            "no trusted authority verified the signature: " + "; ".join(str(e) for e in errors)
        ) from errors[0]


def oci_reference(reference: str) -> str:
    """A Kubernetes image reference (``nginx``, ``host:5000/m:t``) as ``oci://host/repo[:tag][@digest]``."""
    from guard.policy.rules import parse_reference  # noqa: PLC0415

    ref = parse_reference(reference)
    return f"oci://{ref}"


def _required_present(facts: Mapping[str, Any], required: str) -> tuple[bool, str | None]:
    reasons = []
    for entry in facts.get("attestations") or []:
        if required in (entry.get("name"), entry.get("predicateType")):
            if entry.get("status") == "present":
                return True, None
            if entry.get("reason"):
                reasons.append(str(entry["reason"]))
    return False, "; ".join(reasons) or None


class _ReadOnce:
    """A read-only view of a store for one verification: each manifest and referrer list is
    fetched once (the signature and the attestations both read the referrers of the digest), so
    a first-seen model costs one registry round trip less. Writing through it is refused."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._manifests: dict[str, FetchedManifest] = {}
        self._referrers: dict[str, list[Descriptor] | None] = {}

    def describe(self) -> str:
        return self._store.describe()

    def resolve(self, reference: str) -> Descriptor:
        return self._store.resolve(reference)

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        if reference not in self._manifests:
            self._manifests[reference] = self._store.fetch_manifest(reference)
        return self._manifests[reference]

    def referrers(self, digest: str) -> list[Descriptor] | None:
        if digest not in self._referrers:
            self._referrers[digest] = self._store.referrers(digest)
        found = self._referrers[digest]
        return None if found is None else list(found)

    def blob_exists(self, digest: str) -> bool:
        return self._store.blob_exists(digest)

    def fetch_blob(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        return self._store.fetch_blob(digest)

    def push_manifest(self, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        raise UsageError("the admission webhook never writes to a registry")

    def push_blob(
        self, digest: str, size: int, opener: Opener, progress: ProgressCallback | None = None
    ) -> None:
        raise UsageError("the admission webhook never writes to a registry")

    def push_referrer(self, body: bytes, media_type: str) -> tuple[Descriptor, bool]:
        raise UsageError("the admission webhook never writes to a registry")


class OciReferenceVerifier:
    """Resolves and verifies references in registries; thread-safe (one store per thread and
    repository, so connections are reused)."""

    def __init__(self, config: GuardConfig) -> None:
        from guard.oci.registry import RegistryAccess  # noqa: PLC0415

        self._config = config
        self._rules = {rule.name: rule for rule in config.rules}
        try:  # trust roots load here, at start-up: a bad key fails now, not on the first request
            self._verifiers: dict[str, Verifier] = {
                name: authority.to_verifier() for name, authority in config.authorities.items()
            }
        except GuardError as err:
            raise ConfigError(f"cannot load the trust roots of the config's authorities: {err}") from err
        registry = config.admission.registry
        self._access: RegistryAccess = RegistryAccess(
            ca_file=registry.ca_file, docker_config=registry.docker_config, timeout=registry.timeout_seconds
        )
        self._local = threading.local()

    def _store(self, oci_ref: str) -> tuple[Store, Any]:
        from guard.oci.reference import parse_reference  # noqa: PLC0415
        from guard.oci.store import open_store  # noqa: PLC0415

        parsed = parse_reference(oci_ref)
        stores: dict[str, Store] = self._local.__dict__.setdefault("stores", {})
        key = parsed.base()
        store = stores.get(key)
        if store is None:
            store = stores[key] = open_store(parsed, self._access)
        return store, parsed

    def resolve(self, reference: str) -> str:
        store, parsed = self._store(oci_reference(reference))
        return store.resolve(parsed.reference).digest

    def verify(self, reference: str, digest: str, rule: RuleMatch) -> VerifiedArtifact:
        from guard.oci.verify import verify_oci  # noqa: PLC0415

        config_rule = self._rules[rule.rule] if rule.rule is not None else None
        if config_rule is None:
            raise ConfigError(f"rule {rule.rule!r} is not in the config")
        verifiers = [self._verifiers[name] for name in config_rule.authorities]
        shared, parsed = self._store(oci_reference(reference))
        store = _ReadOnce(shared)
        pinned = parsed.with_digest(digest)
        # 1. the signature(s): one of the authorities (any), or each of them (all)
        groups = [[v] for v in verifiers] if config_rule.require == "all" else [verifiers]
        signers = []
        for group in groups:
            result = verify_oci(pinned, AnyOfVerifier(group), store)
            signers.append(result.signer)
        # 2. attestations attached to the digest, verified into facts
        facts = self._facts(store, pinned, digest, AnyOfVerifier(verifiers), signers[0])
        # 3. what the rule requires
        for required in config_rule.required_attestations:
            present, why = _required_present(facts, required)
            if not present:
                raise AttestationError(
                    f"rule {config_rule.name!r} requires a valid {required} attestation attached to "
                    f"{digest}; " + (why or "none is attached")
                )
        return VerifiedArtifact(reference=reference, digest=digest, signers=tuple(signers), facts=facts)

    def _facts(
        self, store: Store, pinned: Any, digest: str, verifier: Verifier, signer: SignerInfo
    ) -> Mapping[str, Any]:
        from guard.attest.collect import AttestationInput, SignatureOutcome, collect_facts  # noqa: PLC0415
        from guard.attest.subject import ModelSubject  # noqa: PLC0415
        from guard.oci.blobs import read_small_blob  # noqa: PLC0415
        from guard.oci.referrers import list_referrers  # noqa: PLC0415
        from guard.oci.types import IN_TOTO_JSON  # noqa: PLC0415

        inputs = []
        for referrer in list_referrers(store, digest, IN_TOTO_JSON):
            manifest = store.fetch_manifest(referrer.digest).json()
            layers = manifest.get("layers") or []
            if not layers:
                continue
            from guard.oci.types import Descriptor  # noqa: PLC0415

            layer = Descriptor.from_json(layers[0], f"referrer {referrer.digest}.layers[0]")
            data = read_small_blob(store, layer, f"attestation {layer.digest}")
            inputs.append(AttestationInput(bundle=data, source=referrer.digest))
        subject = ModelSubject(
            name=str(pinned), sha256=digest.split(":", 1)[1], kind="oci", reference=str(pinned)
        )
        facts = collect_facts(
            subject,
            verifier,
            inputs,
            signature=SignatureOutcome(signer=signer, status="present", source=str(pinned)),
        )
        return facts.to_json()


# --- policies ------------------------------------------------------------------------------------

_SOURCES = (
    (".initContainers[", "initContainer"),
    (".ephemeralContainers[", "ephemeralContainer"),
    (".containers[", "container"),
    (".volumes[", "imageVolume"),
    ("storageUri", "storageUri"),
    (".annotations[", "annotation"),
)


def _source(location: str) -> str:
    return next((name for marker, name in _SOURCES if marker in location), "annotation")


def policy_artifact(verdict: ArtifactVerdict, authorities: Sequence[str] = ()) -> Artifact:
    from guard.policy.input import Artifact, Signer, Verification  # noqa: PLC0415

    occurrences = verdict.ref.occurrences
    source = _source(occurrences[0].location)
    used_by = tuple(dict.fromkeys(o.container or o.location for o in occurrences))
    signers = verdict.artifact.signers if verdict.artifact else ()
    facts = verdict.artifact.facts if verdict.artifact and verdict.artifact.facts else None
    return Artifact(
        ref=verdict.ref.reference,  # as written: policies judge tags (the digest is in the facts)
        source=source,  # type: ignore[arg-type]
        used_by=used_by,
        verification=Verification(
            status=verdict.status,
            reason=verdict.reason or verdict.message or None,
            rule=verdict.match.rule,
            authorities=tuple(authorities),
            signers=tuple(Signer(method=s.method, identity=s.identity, issuer=s.issuer) for s in signers),
        ),
        facts=facts,
        is_model=facts is not None or source in ("storageUri", "imageVolume", "annotation"),
    )


def _with_containers(
    obj: Mapping[str, Any], pod_spec: Mapping[str, Any], artifacts: Sequence[ArtifactVerdict]
) -> Mapping[str, Any]:
    """A pod spec without containers (a KServe predictor with a ``model`` spec, an object whose
    artifacts are only in annotations) gets one synthetic container per artifact that is not
    already a container image, with the resources of the spec that holds it, so policies (GPU
    fit, registries) still see every model."""
    if pod_spec.get("containers"):
        return pod_spec
    containers = []
    for i, verdict in enumerate(artifacts):
        occurrence = verdict.ref.occurrences[0]
        parent_path = occurrence.location.rsplit(".", 1)[0]
        parents = [p for _, p in walk(obj, parent_path)] if "[" not in parent_path else []
        parent = parents[0] if parents and isinstance(parents[0], Mapping) else {}
        container: dict[str, Any] = {"name": f"model-{i}", "image": verdict.ref.reference}
        if isinstance(parent.get("resources"), Mapping):
            container["resources"] = parent["resources"]
        containers.append(container)
    return {**pod_spec, "containers": containers}


class LibraryPolicyEvaluator:
    """Evaluates the policy library once per pod spec of the object (a RayCluster's head and
    workers are judged separately) and merges the violations."""

    def __init__(self, config: GuardConfig, engine: PolicyEngine, kinds: KindTable) -> None:
        self._config = config
        self._engine = engine
        self._kinds = kinds
        self._authorities = {rule.name: rule.authorities for rule in config.rules}

    async def evaluate(
        self, request: AdmissionRequest, artifacts: Sequence[ArtifactVerdict]
    ) -> PolicyResult:
        from guard.policy.input import build_input_for_object  # noqa: PLC0415

        obj: Mapping[str, Any] = request.object or {}
        spec = self._kinds.lookup(request.kind.group, request.kind.kind)
        pod_specs: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = []
        for path in spec.pod_specs if spec else ():
            for where, pod_spec in walk(obj, path):
                if isinstance(pod_spec, Mapping):
                    meta = None
                    if where.endswith(".spec"):
                        found = [m for _, m in walk(obj, where[: -len(".spec")] + ".metadata")]
                        meta = found[0] if found and isinstance(found[0], Mapping) else None
                    pod_specs.append((pod_spec, meta))
        pod_specs = [(_with_containers(obj, spec_, artifacts), meta) for spec_, meta in pod_specs]
        pod_specs = [(spec_, meta) for spec_, meta in pod_specs if spec_.get("containers")]
        if not pod_specs:
            pod_specs.append((_with_containers(obj, {}, artifacts), None))
        inputs = [
            policy_artifact(v, self._authorities.get(v.match.rule or "", ()))
            for v in artifacts
            if v.ref.is_oci
        ]
        req = request.model_dump(by_alias=True, exclude={"object", "old_object"}, mode="json")
        violations: dict[tuple[str, str, str], Violation] = {}
        policies: dict[str, None] = {}
        for pod_spec, meta in pod_specs:
            document = build_input_for_object(
                obj, pod_spec, inputs, self._config, request=req, template_metadata=meta
            )
            decision = await self._engine.evaluate(document)
            policies.update(dict.fromkeys(decision.policies))
            for v in decision.violations:
                violations.setdefault(
                    (v.policy, v.rule, v.message),
                    Violation(
                        policy=v.policy,
                        rule=v.rule,
                        message=v.message,
                        severity=v.severity,
                        action=v.enforcement,
                    ),
                )
        return PolicyResult(violations=tuple(violations.values()), policies=tuple(policies))

    async def aclose(self) -> None:
        await self._engine.aclose()


# --- assembly ------------------------------------------------------------------------------------


def check_admission_config(config: GuardConfig) -> None:
    """Cross-references of the admission section (rule names)."""
    names = {rule.name for rule in config.rules}
    for i, name in enumerate(config.admission.fail_open_rules):
        if name not in names:
            raise ConfigError(
                f"admission.fail_open_rules.{i}: unknown rule {name!r} (rules: {sorted(names)})"
            )


async def build_engine(config: GuardConfig, metrics: AdmissionMetrics | None = None) -> AdmissionEngine:
    """Load trust roots and policies and assemble the admission engine. Call it on the event loop
    that will serve requests (the embedded policy engine stays on the thread that made it)."""
    from guard.policy.engine import make_engine  # noqa: PLC0415

    check_admission_config(config)
    rules = ConfigTrustRules(config)
    verifier = OciReferenceVerifier(config)
    policy = LibraryPolicyEvaluator(config, make_engine(config.policy), KindTable(config.admission.kinds))
    return AdmissionEngine(config.admission, rules, verifier, policy, metrics)
