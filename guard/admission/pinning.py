"""Digest pinning: the mutating webhook's RFC 6902 JSON Patch (``POST /mutate``) and ``guard pin``.

Each OCI reference by tag in the fields the kind table names (containers, init and ephemeral
containers, image volumes, pod templates, CronJob templates, KServe ``storageUri`` /
``storageUris[].uri`` / component images, LLMInferenceService ``spec.model.uri``, ...) is
resolved once (``AdmissionEngine.resolve``: the tag cache the validating side uses) and
rewritten ``repo:tag@sha256:...``: the tag is kept for people, the digest is what the kubelet
pulls, so what was verified is what runs.

Each ``replace`` is preceded by a ``test`` of the value guard read, so a patch computed from a
state another mutating webhook has changed since fails instead of overwriting it.

Never mutated: an object whose controller owner is a kind of the table (a ReplicaSet of a
Deployment, a Pod of a ReplicaSet: mutating them makes the controller fight the webhook) unless
the rule's mode is ``pods-only`` and the object is a Pod; an already pinned reference; any
reference while the policy runs in warn or dryrun; a Job on UPDATE (its template is immutable);
on UPDATE, a reference the old object already had at the same place (pinning it would restart
running containers, or roll a controller nobody asked to roll).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from guard.admission.kinds import KindTable
from guard.admission.references import split_scheme
from guard.admission.review import AdmissionRequest
from guard.admission.settings import KindSpec
from guard.config import GuardConfig
from guard.errors import GuardError, UsageError
from guard.oci.reference import parse_image_reference

PinMode = Literal["off", "pods-only", "top-level"]
Resolver = Callable[[str], Awaitable[str]]

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_DIGEST_PREFIX = "sha256:"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer(tokens: tuple[str, ...]) -> str:
    """RFC 6901 JSON pointer of ``tokens``."""
    return "".join("/" + _escape(t) for t in tokens)


def _walk(node: Any, path: str, here: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``guard.admission.references.walk`` yielding pointer tokens instead of dotted paths."""
    if not path:
        yield here, node
        return
    head, _, rest = path.partition(".")
    if head == "*":
        if isinstance(node, Mapping):
            for key, child in node.items():
                yield from _walk(child, rest, (*here, str(key)))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from _walk(child, rest, (*here, str(index)))
        return
    if isinstance(node, Mapping) and head in node:
        yield from _walk(node[head], rest, (*here, head))


def reference_fields(obj: Mapping[str, Any], kind: KindSpec) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every (pointer tokens, value) of a field holding one artifact reference that the kubelet
    or a model server pulls as written: container images, image volumes, reference fields."""
    seen: set[tuple[str, ...]] = set()

    def emit(tokens: tuple[str, ...], value: Any) -> Iterator[tuple[tuple[str, ...], str]]:
        if isinstance(value, str) and value and tokens not in seen:
            seen.add(tokens)
            yield tokens, value

    for path in kind.pod_specs:
        for where, spec in _walk(obj, path):
            if not isinstance(spec, Mapping):
                continue
            for lst in _CONTAINER_LISTS:
                containers = spec.get(lst)
                if isinstance(containers, list):
                    for index, container in enumerate(containers):
                        if isinstance(container, Mapping):
                            yield from emit((*where, lst, str(index), "image"), container.get("image"))
            volumes = spec.get("volumes")
            if isinstance(volumes, list):
                for index, volume in enumerate(volumes):
                    mounted = volume.get("image") if isinstance(volume, Mapping) else None
                    if isinstance(mounted, Mapping):
                        tokens = (*where, "volumes", str(index), "image", "reference")
                        yield from emit(tokens, mounted.get("reference"))
    for path in kind.references:
        for where, value in _walk(obj, path):
            yield from emit(where, value)


def _value_at(obj: Any, tokens: tuple[str, ...]) -> Any:
    node = obj
    for token in tokens:
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def pinned_value(value: str, digest: str) -> str:
    """``value`` (``repo:tag``, ``oci://repo:tag``) with ``@digest`` appended, spelling kept."""
    return f"{value}@{digest}"


def _tagged_reference(value: str) -> str | None:
    """The normalised OCI reference of ``value`` when it is an OCI reference by tag (no digest)
    guard can read; None for digests, other schemes (s3://, hf://) and unreadable strings."""
    if value != value.strip():
        return None  # not a reference the kubelet reads as written: left to the validating side
    scheme, written = split_scheme(value)
    if scheme != "oci" or "@" in written:
        return None
    try:
        return parse_image_reference(written).image()
    except UsageError:
        return None  # the validating side denies or applies the default to it


@dataclass
class PinResult:
    """The JSON Patch (RFC 6902) for one object, and why references were left alone."""

    operations: list[dict[str, Any]] = field(default_factory=list)
    pinned: dict[str, str] = field(default_factory=dict)  # pointer -> new value
    notes: list[str] = field(default_factory=list)

    def patch_bytes(self) -> bytes:
        return json.dumps(self.operations, separators=(",", ":")).encode()

    def patch_base64(self) -> str:
        return base64.b64encode(self.patch_bytes()).decode()


def _controller_owner(obj: Mapping[str, Any], table: KindTable) -> str | None:
    metadata = obj.get("metadata")
    owners = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    if not isinstance(owners, list):
        return None
    for owner in owners:
        if not isinstance(owner, Mapping) or owner.get("controller") is not True:
            continue
        api_version = owner.get("apiVersion")
        kind = owner.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            continue
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        if table.lookup(group, kind) is not None:
            return f"{kind} {owner.get('name', '')}".strip()
    return None


class DigestPinner:
    """Computes digest-pinning patches from the config's rules (each rule's ``pin`` mode)."""

    def __init__(self, config: GuardConfig, resolve: Resolver, kinds: KindTable | None = None) -> None:
        self._config = config
        self._resolve = resolve
        self.kinds = kinds if kinds is not None else KindTable(config.admission.kinds)

    def enforcing(self) -> bool:
        """Pinning runs only when guard denies: in warn (admission.mode or the policy's default
        enforcement) or dryrun nothing is mutated."""
        return self._config.admission.mode == "enforce" and self._config.policy.default_enforcement == "deny"

    def _mode(self, reference: str, namespace: str) -> PinMode:
        try:
            rule = self._config.match_rule(reference, namespace)
        except UsageError:
            return "off"
        return rule.pin if rule is not None else "off"

    async def pin(
        self,
        obj: Mapping[str, Any] | None,
        *,
        group: str,
        kind: str,
        namespace: str,
        operation: str = "CREATE",
        old_object: Mapping[str, Any] | None = None,
    ) -> PinResult:
        result = PinResult()
        if not obj or operation not in ("CREATE", "UPDATE"):
            return result
        spec = self.kinds.lookup(group, kind)
        if spec is None:
            return result
        if not self.enforcing():
            policy = self._config.policy.default_enforcement
            running = "warn" if self._config.admission.mode == "warn" else policy
            result.notes.append(f"not pinned: the policy runs in {running}")
            return result
        if operation == "UPDATE" and group == "batch" and kind == "Job":
            result.notes.append("not pinned: a Job's pod template is immutable on UPDATE")
            return result
        owner = _controller_owner(obj, self.kinds)
        is_pod = group == "" and kind == "Pod"
        wanted: list[tuple[tuple[str, ...], str, str]] = []
        for tokens, value in reference_fields(obj, spec):
            reference = _tagged_reference(value)
            if reference is None:
                continue
            if operation == "UPDATE" and old_object is not None and _value_at(old_object, tokens) == value:
                continue
            mode = self._mode(reference, namespace)
            if mode == "off":
                continue
            if owner is not None and not (mode == "pods-only" and is_pod):
                result.notes.append(f"{pointer(tokens)} not pinned: controlled by {owner}")
                continue
            if mode == "pods-only" and not is_pod:
                continue
            wanted.append((tokens, value, reference))
        digests = await asyncio.gather(
            *(self._resolve(ref) for ref in dict.fromkeys(r for _, _, r in wanted)), return_exceptions=True
        )
        resolved = dict(zip(dict.fromkeys(r for _, _, r in wanted), digests, strict=True))
        for tokens, value, reference in wanted:
            digest = resolved[reference]
            if isinstance(digest, BaseException):
                if not isinstance(digest, GuardError | OSError | TimeoutError):
                    raise digest
                result.notes.append(f"{pointer(tokens)} not pinned: {reference} did not resolve ({digest})")
                continue
            if not (digest.startswith(_DIGEST_PREFIX) and len(digest) == 71):
                result.notes.append(f"{pointer(tokens)} not pinned: {reference} resolved to {digest!r}")
                continue
            path = pointer(tokens)
            new = pinned_value(value, digest)
            result.operations.append({"op": "test", "path": path, "value": value})
            result.operations.append({"op": "replace", "path": path, "value": new})
            result.pinned[path] = new
        return result


async def mutation_answer(
    pinner: DigestPinner, request: AdmissionRequest, exempt: frozenset[str]
) -> dict[str, Any]:
    """The AdmissionResponse of ``/mutate`` (always allowed: the validating webhook decides).
    ``patchType`` is sent only with a non-empty ``patch``."""
    answer: dict[str, Any] = {"uid": request.uid, "allowed": True}
    if (request.namespace or "") in exempt or request.sub_resource not in (None, "ephemeralcontainers"):
        return answer
    result = await pinner.pin(
        request.object,
        group=request.kind.group,
        kind=request.kind.kind,
        namespace=request.namespace or "",
        operation=request.operation,
        old_object=request.old_object,
    )
    if result.operations:
        answer["patchType"] = "JSONPatch"
        answer["patch"] = result.patch_base64()
        answer["auditAnnotations"] = {"pinned": json.dumps(result.pinned)[:10000]}
    failed = [note for note in result.notes if "did not resolve" in note]
    if failed:
        answer["warnings"] = [f"guard: {note}"[:500] for note in failed[:10]]
    return answer
