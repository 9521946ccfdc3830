"""Inventory: objects in, workloads out.

Pods are resolved to their top owner through the controller ``ownerReferences`` of the objects
listed (Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob, a KServe / Kubeflow / Ray owner of
the kinds table). Memory follows owners and distinct templates, never pods: pods are folded into
one group per direct owner as they arrive (a count, their names, the distinct running digests,
one sample pod), and owners are resolved at the end, so the order objects arrive in does not
matter. A workload kind's body is kept only while it may be a top owner.

A pod whose owner was not listed (its kind is not in the table, or listing it was forbidden) is
folded into a workload named after that owner and evaluated from a sample pod, so replicas are
still a weight, not repeated work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from guard.scan.result import OwnerRef
from guard.scan.targets import ScanTarget

MAX_POD_NAMES = 10_000  # per workload: beyond, the count is exact and the names are cut


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controller ownerReference (``controller: true``), else the only owner, else None."""
    owners = _meta(obj).get("ownerReferences")
    if not isinstance(owners, list):
        return None
    refs = [o for o in owners if isinstance(o, Mapping) and isinstance(o.get("uid"), str)]
    for ref in refs:
        if ref.get("controller") is True:
            return ref
    return refs[0] if len(refs) == 1 else None


@dataclass
class _Object:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    owner_uid: str | None
    target: ScanTarget
    body: Mapping[str, Any] | None


@dataclass
class RunningImage:
    """Containers of pods that run ``image`` and report ``image_id``."""

    container: str
    image: str
    image_id: str


@dataclass
class PodGroup:
    """Pods with the same direct owner (or one bare pod)."""

    namespace: str
    owner: Mapping[str, Any] | None  # the ownerReference
    sample: Mapping[str, Any]  # the first pod seen, evaluated when its owner is not listed
    target: ScanTarget
    pods: int = 0
    names: list[str] = field(default_factory=list)
    running: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (container, image, imageID)


@dataclass
class WorkloadUnit:
    """One workload to evaluate: its object (or a sample pod standing for it), its pods."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None
    target: ScanTarget
    body: Mapping[str, Any]
    owner_chain: tuple[OwnerRef, ...] = ()
    groups: list[PodGroup] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.api_version}/{self.kind}/{self.namespace}/{self.name}"

    @property
    def replicas(self) -> int:
        return sum(g.pods for g in self.groups)


def _running(pod: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
    images: dict[str, str] = {}
    for field_name in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field_name) or [] if isinstance(spec, Mapping) else []:
            if isinstance(c, Mapping) and isinstance(c.get("name"), str) and isinstance(c.get("image"), str):
                images[c["name"]] = c["image"]
    status = pod.get("status") if isinstance(pod.get("status"), Mapping) else {}
    found = []
    for field_name in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for s in status.get(field_name) or [] if isinstance(status, Mapping) else []:
            if not isinstance(s, Mapping):
                continue
            name, image_id = _str(s.get("name")), _str(s.get("imageID"))
            if name in images and image_id:
                found.append((name, images[name], image_id))
    return found


class Inventory:
    """An ``ObjectSink``: stages each kind's objects, commits them, then resolves workloads."""

    def __init__(self) -> None:
        self._objects: dict[str, _Object] = {}
        self._groups: dict[str, PodGroup] = {}
        self._staged_objects: dict[ScanTarget, dict[str, _Object]] = {}
        self._staged_groups: dict[ScanTarget, dict[str, PodGroup]] = {}
        self.pods = 0

    # -- the sink ---------------------------------------------------------------------------

    def begin(self, target: ScanTarget) -> None:
        self._staged_objects[target] = {}
        self._staged_groups[target] = {}

    def add(self, target: ScanTarget, obj: Mapping[str, Any]) -> None:
        meta = _meta(obj)
        namespace, name, uid = _str(meta.get("namespace")), _str(meta.get("name")), _str(meta.get("uid"))
        if not name:
            return
        owner = controller_of(obj)
        if target.is_pod:
            self._add_pod(target, obj, namespace=namespace, name=name, uid=uid, owner=owner)
            return
        owner_uid = _str(owner.get("uid")) if owner else None
        known_owner = owner_uid is not None and (
            owner_uid in self._objects or owner_uid in self._staged_objects[target]
        )
        key = uid or f"{target.label}/{namespace}/{name}"
        if known_owner and self._owned_by(owner_uid, key, self._staged_objects[target]):
            known_owner = False  # its owners loop back to it: it is evaluated, as a top of the loop
        self._staged_objects[target][key] = _Object(
            api_version=_str(obj.get("apiVersion")) or target.api_version,
            kind=target.kind,
            namespace=namespace,
            name=name,
            uid=key,
            owner_uid=owner_uid,
            target=target,
            body=None if known_owner else obj,  # an owned object is never evaluated itself
        )

    def _add_pod(
        self,
        target: ScanTarget,
        pod: Mapping[str, Any],
        *,
        namespace: str,
        name: str,
        uid: str,
        owner: Mapping[str, Any] | None,
    ) -> None:
        key = f"owner:{owner['uid']}" if owner else f"pod:{uid or namespace + '/' + name}"
        staged = self._staged_groups[target]
        group = staged.get(key)
        if group is None:
            group = staged[key] = PodGroup(namespace=namespace, owner=owner, sample=pod, target=target)
        group.pods += 1
        if len(group.names) < MAX_POD_NAMES:
            group.names.append(name)
        for entry in _running(pod):
            group.running[entry] += 1

    def commit(self, target: ScanTarget) -> None:
        objects = self._staged_objects.pop(target, {})
        self._objects.update(objects)
        groups = self._staged_groups.pop(target, {})
        for key, group in groups.items():
            self.pods += group.pods
            existing = self._groups.get(key)
            if existing is None:
                self._groups[key] = group
            else:  # the same owner's pods from another namespace list or file
                existing.pods += group.pods
                existing.names.extend(group.names[: max(0, MAX_POD_NAMES - len(existing.names))])
                existing.running.update(group.running)

    def _owned_by(self, uid: str | None, key: str, staged: Mapping[str, _Object]) -> bool:
        """Whether the owners above ``uid`` lead back to ``key`` (a loop of ownerReferences)."""
        seen: set[str] = set()
        while uid is not None and uid not in seen:
            if uid == key:
                return True
            seen.add(uid)
            current = staged.get(uid) or self._objects.get(uid)
            uid = current.owner_uid if current else None
        return False

    # -- resolution -------------------------------------------------------------------------

    def _chain(self, uid: str) -> list[_Object]:
        """From the object with ``uid`` up to its top listed owner (cycles cut)."""
        chain: list[_Object] = []
        seen: set[str] = set()
        current = self._objects.get(uid)
        while current is not None and current.uid not in seen:
            chain.append(current)
            seen.add(current.uid)
            current = self._objects.get(current.owner_uid) if current.owner_uid else None
        return chain

    def _top(self, chain: list[_Object]) -> _Object:
        """The object a chain folds into: its top listed owner or, when the owners loop
        (ownerReferences are the user's to write), the first object on the loop with a body."""
        last = chain[-1]
        loop_start = self._objects.get(last.owner_uid) if last.owner_uid else None
        if loop_start is None:
            return last
        loop = {o.uid for o in chain[chain.index(loop_start) :]}
        return next((o for o in chain if o.uid in loop and o.body is not None), last)

    def workloads(self) -> list[WorkloadUnit]:
        units: dict[str, WorkloadUnit] = {}
        for obj in self._objects.values():
            top = self._top(self._chain(obj.uid))
            if top is obj and top.body is not None:
                units[top.uid] = WorkloadUnit(
                    api_version=top.api_version,
                    kind=top.kind,
                    namespace=top.namespace,
                    name=top.name,
                    uid=top.uid,
                    target=top.target,
                    body=top.body,
                )
        for key, group in self._groups.items():
            unit = self._unit_for(key, group, units)
            unit.groups.append(group)
        return sorted(units.values(), key=lambda u: u.id)

    def _unit_for(self, key: str, group: PodGroup, units: dict[str, WorkloadUnit]) -> WorkloadUnit:
        owner = group.owner
        if owner is not None:
            chain = self._chain(str(owner["uid"]))
            if chain and self._top(chain).uid in units:
                unit = units[self._top(chain).uid]
                below = tuple(
                    OwnerRef(api_version=o.api_version, kind=o.kind, name=o.name, uid=o.uid)
                    for o in reversed(chain)
                )
                if len(below) > len(unit.owner_chain):
                    unit.owner_chain = below
                return unit
        # no listed owner: the owner named by the reference (or the bare pod) stands as workload
        meta = _meta(group.sample)
        if owner is not None:
            api_version, kind, name, uid = (
                _str(owner.get("apiVersion")),
                _str(owner.get("kind")),
                _str(owner.get("name")),
                _str(owner.get("uid")),
            )
        else:
            api_version, kind, name, uid = "v1", "Pod", _str(meta.get("name")), _str(meta.get("uid"))
        existing = units.get(key)
        if existing is None:
            existing = units[key] = WorkloadUnit(
                api_version=api_version,
                kind=kind,
                namespace=group.namespace,
                name=name,
                uid=uid or None,
                target=group.target,
                body=group.sample,
                owner_chain=(OwnerRef(api_version=api_version, kind=kind, name=name, uid=uid or None),),
            )
        return existing
