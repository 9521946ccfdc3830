"""Fakes for the admission engine's seams, and a builder of AdmissionReview requests.

Users can test their own configurations and kinds with these, without a registry:
``FakeRules`` (glob rules), ``FakeVerifier`` (a registry in a dict, counting calls, optionally
blocking until released), ``FakePolicy`` (fixed violations) and ``admission_review(obj)``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from guard.admission.outcome import ArtifactVerdict
from guard.admission.ports import (
    PolicyResult,
    RuleMatch,
    UnmatchedAction,
    VerifiedArtifact,
    Violation,
)
from guard.admission.review import AdmissionRequest
from guard.errors import NotFoundError, PolicyEngineError, RegistryError, SignatureMismatch
from guard.policy.sources import allowed_by
from guard.signing.types import SignerInfo


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class FakeRule:
    name: str
    pattern: str  # glob over the reference without tag or digest, e.g. "registry.local/models/*"
    fail_open: bool = False


def repository_of(reference: str) -> str:
    """``host/repo:tag@sha256:..`` -> ``host/repo``."""
    ref = reference.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


class FakeRules:
    """Glob rules over repositories; ``allowed_sources``: the ``policy.allowed_model_sources``
    prefixes (a non-OCI source they allow is not denied as unmatched), as ``ConfigTrustRules``."""

    def __init__(
        self,
        rules: Sequence[FakeRule] = (),
        unmatched: UnmatchedAction = "deny",
        allowed_sources: Sequence[str] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.unmatched = unmatched
        self.allowed_sources = tuple(allowed_sources)

    def match(self, reference: str, namespace: str) -> RuleMatch:
        if "://" in reference and allowed_by(reference, self.allowed_sources) is not None:
            return RuleMatch(rule=None, trust_hash="", unmatched="allow")
        repo = repository_of(reference)
        for rule in self.rules:
            if fnmatch.fnmatchcase(repo, rule.pattern):
                return RuleMatch(rule=rule.name, trust_hash=digest_of(rule.name), fail_open=rule.fail_open)
        return RuleMatch(rule=None, trust_hash="", unmatched=self.unmatched)


@dataclass
class FakeVerifier:
    """A registry in memory. ``tags`` maps ``repo:tag`` to digests; ``signed`` holds the digests
    that verify (with their signer); ``tampered`` those whose signature does not match;
    ``down`` makes every call fail like an unreachable registry; ``gate``, when set, makes every
    call wait for it (at most ``gate_timeout`` seconds) so tests can pile up concurrent requests;
    ``answering`` says the registry answers (a slow one, not an unreachable one)."""

    tags: dict[str, str] = field(default_factory=dict)
    signed: dict[str, str] = field(default_factory=dict)
    tampered: set[str] = field(default_factory=set)
    facts: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    down: bool = False
    gate: threading.Event | None = None
    gate_timeout: float = 30.0
    resolve_calls: int = 0
    verify_calls: int = 0
    answering: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answered_recently(self, reference: str, seconds: float) -> bool:
        return self.answering and not self.down

    def add(self, reference: str, *, signer: str | None = "ci@example.com", tampered: bool = False) -> str:
        """Register ``repo:tag``; returns its digest. ``signer=None``: unsigned."""
        digest = digest_of(reference)
        self.tags[reference] = digest
        if tampered:
            self.tampered.add(digest)
        elif signer is not None:
            self.signed[digest] = signer
        return digest

    def _wait(self) -> None:
        if self.gate is not None:
            self.gate.wait(self.gate_timeout)
        if self.down:
            raise RegistryError("registry.local: connection refused (is the registry up?)")

    def resolve(self, reference: str) -> str:
        with self._lock:
            self.resolve_calls += 1
        self._wait()
        try:
            return self.tags[reference]
        except KeyError as err:
            raise NotFoundError(f"{reference}: no such tag in the registry") from err

    def verify(self, reference: str, digest: str, rule: RuleMatch) -> VerifiedArtifact:
        with self._lock:
            self.verify_calls += 1
        self._wait()
        if digest in self.tampered:
            raise SignatureMismatch(f"the signature of {digest} does not match its content")
        signer = self.signed.get(digest)
        if signer is None:
            raise SignatureMismatch(f"no signature for {digest} by an authority of rule {rule.rule!r}")
        return VerifiedArtifact(
            reference=reference,
            digest=digest,
            signers=(SignerInfo(method="key", identity=signer),),
            facts=self.facts.get(digest, {}),
        )


@dataclass
class FakePolicy:
    """Returns ``violations`` for every request (and what ``judge`` finds in it, when given);
    ``fail`` makes the engine fail."""

    violations: tuple[Violation, ...] = ()
    policies: tuple[str, ...] = ("supply_chain.signed",)
    fail: bool = False
    calls: int = 0
    seen: list[tuple[str, tuple[ArtifactVerdict, ...]]] = field(default_factory=list)
    judge: Callable[[AdmissionRequest, Sequence[ArtifactVerdict]], Sequence[Violation]] | None = None

    async def evaluate(
        self,
        request: AdmissionRequest,
        artifacts: Sequence[ArtifactVerdict],
        *,
        template: bytes | None = None,
    ) -> PolicyResult:
        self.calls += 1
        self.seen.append((request.uid, tuple(artifacts)))
        if self.fail:
            raise PolicyEngineError("the policy engine is unavailable (fake)")
        found = tuple(self.judge(request, artifacts)) if self.judge is not None else ()
        return PolicyResult(violations=self.violations + found, policies=self.policies)


_counter = itertools.count()

_GROUP_RESOURCES = {
    "Pod": "pods",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "ReplicaSet": "replicasets",
    "Job": "jobs",
    "CronJob": "cronjobs",
    "InferenceService": "inferenceservices",
    "RayCluster": "rayclusters",
    "RayJob": "rayjobs",
    "PyTorchJob": "pytorchjobs",
}


def admission_review(
    obj: Mapping[str, Any],
    *,
    operation: str = "CREATE",
    namespace: str | None = None,
    old: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    uid: str | None = None,
    sub_resource: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview v1 request (as a JSON-ready dict) for ``obj``."""
    api_version = str(obj.get("apiVersion", "v1"))
    group, _, version = api_version.rpartition("/")
    kind = str(obj.get("kind", "Pod"))
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    ns = namespace if namespace is not None else str(metadata.get("namespace", "default"))
    resource = _GROUP_RESOURCES.get(kind, kind.lower() + "s")
    request: dict[str, Any] = {
        "uid": uid or str(uuid.UUID(int=next(_counter) + 1)),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "name": metadata.get("name") if isinstance(metadata.get("name"), str) else None,
        "namespace": ns,
        "operation": operation,
        "userInfo": {"username": "alice@example.com", "groups": ["system:authenticated"]},
        "object": dict(obj),
        "oldObject": dict(old) if old is not None else None,
        "dryRun": dry_run,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def pod(*images: str, name: str = "demo", namespace: str = "team-a", **spec: Any) -> dict[str, Any]:
    """A Pod running ``images`` (one container each)."""
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": containers, **spec},
    }
