"""The policy side of admission: build the policy input (``guard.policy.input``) for each pod spec
of the object and evaluate the library with the configured engine."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pydantic_core

from guard.admission.kinds import KindTable
from guard.admission.outcome import ArtifactVerdict
from guard.admission.ports import PolicyResult, Violation
from guard.admission.references import Occurrence, walk
from guard.admission.review import AdmissionRequest
from guard.config import GuardConfig
from guard.memo import keep
from guard.policy.cache import UNLOADABLE_TOKENS
from guard.policy.decision import frozen_instance

if TYPE_CHECKING:
    from guard.policy.engine import PolicyEngine
    from guard.policy.input import Artifact, UsageLookup

_SOURCES = (
    (".initContainers[", "initContainer"),
    (".ephemeralContainers[", "ephemeralContainer"),
    (".containers[", "container"),
    (".volumes[", "imageVolume"),
    ("storageUri", "storageUri"),
    (".annotations[", "annotation"),
)


_ARTIFACTS_KEPT = 1024  # verdicts whose policy artifact is kept (all dropped when full)
_STEADY_KEPT = 1024  # templates whose policy result is kept (all dropped when full)


def _source(occurrence: Occurrence) -> str:
    if occurrence.source is not None:
        return occurrence.source
    location = occurrence.location
    found = next((name for marker, name in _SOURCES if marker in location), None)
    if found is not None:
        return found
    # a plain reference field of a custom resource: an image (KServe model.image, a TrainJob's
    # trainer.image) or a model URI (LLMInferenceService model.uri, sourceModelUri, ...)
    return "container" if location.endswith(".image") else "storageUri"


def policy_artifact(verdict: ArtifactVerdict, authorities: Sequence[str] = ()) -> Artifact:
    """The policy input's artifact of a verdict; ``authorities``: the rule's, standing for those
    that verified when the verified artifact does not name them."""
    from guard.policy.input import Artifact, Signer, Verification  # noqa: PLC0415

    occurrences = verdict.ref.occurrences
    source = _source(occurrences[0])
    used_by = tuple(dict.fromkeys(o.container or o.location for o in occurrences))
    signers = verdict.artifact.signers if verdict.artifact else ()
    facts = verdict.artifact.facts if verdict.artifact and verdict.artifact.facts else None
    if verdict.artifact is not None and verdict.artifact.authorities is not None:
        authorities = verdict.artifact.authorities  # those that verified, not all of the rule's
    return Artifact(
        ref=verdict.ref.reference,  # as written: policies judge tags (the digest is in the facts)
        source=source,  # type: ignore[arg-type]
        used_by=used_by,
        verification=Verification(
            status=verdict.status,
            reason=verdict.reason or verdict.message or None,
            rule=verdict.match.rule,
            authorities=tuple(authorities),
            signers=tuple(
                Signer(s.method, s.identity, s.issuer, s.details.get("format"), s.details.get("signed_via"))
                for s in signers
            ),
            fail_open=verdict.status == "error" and verdict.effect == "warn",
        ),
        facts=facts,
        is_model=facts is not None
        or not verdict.ref.is_oci
        or source in ("storageUri", "imageVolume", "annotation", "declared", "csiVolume", "storageSpec"),
        scheme=verdict.ref.scheme,
        locations=tuple(dict.fromkeys(o.location for o in occurrences)),
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
    for i, verdict in enumerate(a for a in artifacts if a.ref.is_oci):  # a URI is no image
        occurrence = verdict.ref.occurrences[0]
        parent_path = occurrence.location.rsplit(".", 1)[0]
        parents = [p for _, p in walk(obj, parent_path)] if "[" not in parent_path else []
        parent = parents[0] if parents and isinstance(parents[0], Mapping) else {}
        container: dict[str, Any] = {"name": f"model-{i}", "image": verdict.ref.reference}
        if isinstance(parent.get("resources"), Mapping):
            container["resources"] = parent["resources"]
        containers.append(container)
    return {**pod_spec, "containers": containers}


def request_fields(request: AdmissionRequest) -> dict[str, Any]:
    """The request's fields the policy input reads (``guard.policy.input.request_input``), with
    the values ``request.model_dump(by_alias=True, mode="json")`` has for them: built directly,
    ~7x cheaper than dumping the model on every request."""
    kind, user = request.kind, request.user_info
    return {
        "uid": request.uid,
        "kind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
        "name": request.name,
        "namespace": request.namespace,
        "operation": request.operation,
        "userInfo": {"username": user.username, "uid": user.uid, "groups": list(user.groups)},
        "dryRun": request.dry_run,
    }


class LibraryPolicyEvaluator:
    """Evaluates the policy library once per pod spec of the object (a RayCluster's head and
    workers are judged separately) and merges the violations."""

    def __init__(
        self, config: GuardConfig, engine: PolicyEngine, kinds: KindTable, usage: UsageLookup | None = None
    ) -> None:
        self._config = config
        self._usage = usage
        self._engine = engine
        self._kinds = kinds
        self._authorities = {rule.name: rule.authorities for rule in config.rules}
        from guard.policy import input as inputs  # noqa: PLC0415

        self._inputs = inputs  # the input builder, imported once, not on every request
        self._constants = inputs.InputConstants(config)  # a reloaded config makes a new evaluator
        # a verdict's policy artifact, by what it is made of: a model's pods bring the same verdict
        # (its verified artifact cached, the same object) request after request
        self._artifacts: dict[tuple[Any, ...], tuple[ArtifactVerdict, Artifact]] = {}
        # the result for the requests of one template: by _steady_key (the entry keeps the
        # policy artifacts it names by identity)
        self._steady: dict[bytes, tuple[tuple[Artifact, ...], PolicyResult]] = {}

    def _policy_artifact(self, verdict: ArtifactVerdict) -> Artifact:
        """``policy_artifact`` of ``verdict`` with its rule's authorities, made once for equal
        verdicts. The key holds every field of the verdict ``policy_artifact`` reads; the verified
        artifact (signers, facts), immutable, by identity, the entry keeping it alive."""
        key = (
            verdict.ref,
            verdict.match,
            verdict.status,
            verdict.effect,
            verdict.message,
            verdict.reason,
            id(verdict.artifact),
        )
        found = self._artifacts.get(key)
        if found is not None and found[0].artifact is verdict.artifact:
            return found[1]
        made = policy_artifact(verdict, self._authorities.get(verdict.match.rule or "", ()))
        return keep(self._artifacts, key, (verdict, made), _ARTIFACTS_KEPT)[1]

    async def evaluate(
        self,
        request: AdmissionRequest,
        artifacts: Sequence[ArtifactVerdict],
        *,
        template: bytes | None = None,
    ) -> PolicyResult:
        obj: Mapping[str, Any] = request.object or {}
        # every source: a non-OCI one as an unverified model source
        inputs = [self._policy_artifact(v) for v in artifacts]
        steady_key = self._steady_key(request, obj, artifacts, inputs, template) if template else None
        kept = self._steady.get(steady_key) if steady_key is not None else None
        if kept is not None and len(kept[0]) == len(inputs) and all(map(operator.is_, kept[0], inputs)):
            return kept[1]  # the same inputs but for the volatile fields' strings: steady
        steady = steady_key is not None
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
        req = request_fields(request)
        violations: dict[tuple[str, str, str], Violation] = {}
        policies: dict[str, None] = {}
        for pod_spec, meta in pod_specs:
            document = self._inputs.build_input_for_object(
                obj,
                pod_spec,
                inputs,
                self._config,
                request=req,
                template_metadata=meta,
                usage=self._usage,
                constants=self._constants,
            )
            decision = await self._engine.evaluate(document)
            steady = steady and decision.steady
            policies.update(dict.fromkeys(decision.policies))
            for v in decision.violations:
                key = (v.policy, v.rule, v.message)
                if key not in violations:
                    violations[key] = frozen_instance(
                        Violation,
                        {
                            "policy": v.policy,
                            "rule": v.rule,
                            "message": v.message,
                            "severity": v.severity,
                            "action": v.enforcement,
                            "artifact": v.artifact,
                            "controls": v.controls,
                            "container": v.container,
                        },
                    )
        result = PolicyResult(violations=tuple(violations.values()), policies=tuple(policies))
        if steady_key is not None and steady:
            keep(self._steady, steady_key, (tuple(inputs), result), _STEADY_KEPT)
        return result

    def _steady_key(
        self,
        request: AdmissionRequest,
        obj: Mapping[str, Any],
        verdicts: Sequence[ArtifactVerdict],
        inputs: Sequence[Artifact],
        template: bytes,
    ) -> bytes | None:
        """What the policy inputs of ``request`` are made of but the values of their volatile
        fields (``guard.policy.cache.VOLATILE``: the request's uid and name, the object's name),
        as SHA-256; None when the result must be evaluated (a name that is not a string, a
        tenant whose carbon usage the input reads).

        The pods of one template give the same key. When every one of a request's inputs was
        decided ``steady`` (the engine's template cache answered it, no rule reading a volatile
        field evaluated), the result is kept under this key and is the result of every request
        with that key. The key holds the object's ``template`` digest (the whole object but the
        metadata the API server sets for each pod, ``PER_POD_METADATA``: none of it reaches the
        inputs but the name, volatile), the request's fields the input reads, the verdicts'
        references (``_with_containers`` reads them) and the policy artifacts by identity (the
        memo keeps them). tests/admission/test_steady_results.py holds the key to what the
        inputs are made of: what it leaves out reaches no input but the volatile fields, and
        kept results equal evaluated ones over random changes."""
        if not isinstance(request.name, str) or not isinstance(obj, Mapping):
            return None
        meta = obj.get("metadata") or {}
        if not isinstance(meta, Mapping):
            return None  # refused by the input builder: on the path that says so
        namespace = self._inputs.object_namespace(request.namespace, meta)
        if not isinstance(namespace, str):
            return None
        tenant = self._constants.tenant_of(namespace)
        if tenant is not None and tenant.carbon is not None:
            return None  # a carbon budget: the input reads the usage published now
        name = self._inputs.workload_name(meta)
        try:
            # the volatile values: strings, one the engine's input check refuses (holding NaN or
            # Infinity, whose JSON does: ``loadable``) or that is no UTF-8 is sent, and refused,
            # on the path that says so. NUL between them: no token spans two.
            volatile = "\0".join((request.uid, request.name, str(name))).encode()
            if any(token in volatile for token in UNLOADABLE_TOKENS):
                return None
            kind, user = request.kind, request.user_info
            text = pydantic_core.to_json(
                [
                    [kind.group, kind.version, kind.kind, request.namespace, request.operation],
                    [user.username, user.uid, user.groups, request.dry_run],
                    [
                        [v.ref.reference, v.ref.is_oci, [o.location for o in v.ref.occurrences]]
                        for v in verdicts
                    ],
                    [id(a) for a in inputs],
                ]
            )
        except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
            return None
        return hashlib.sha256(template + text).digest()

    async def warm_up(self) -> None:
        """One evaluation of the library's base example (``guard.policy.examples``, allowed by
        every policy) with the embedded engine, so that the first admission is not the one paying
        for the engine's first evaluation. The result is not used; an OPA server is not asked."""
        from guard.policy.examples import example_input  # noqa: PLC0415
        from guard.policy.settings import EmbeddedEngineSettings  # noqa: PLC0415

        if isinstance(self._config.policy.engine, EmbeddedEngineSettings):
            await self._engine.evaluate(example_input())

    async def aclose(self) -> None:
        await self._engine.aclose()
