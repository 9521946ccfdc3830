"""What the scan lists: every kind of admission's kinds table, parents before children.

The kinds table knows a kind by API group and kind; listing it needs a version and a resource
(plural) name. Built-in kinds carry theirs here; a kind added in the config (``admission.kinds``)
is found through discovery (live) or by ``apiVersion`` and ``kind`` in a snapshot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from guard.admission.kinds import KindTable
from guard.admission.settings import KindSpec

# (group, kind) -> (version, resource): the built-in kinds and where the API serves them.
_KNOWN: dict[tuple[str, str], tuple[str, str]] = {
    ("", "Pod"): ("v1", "pods"),
    ("", "ReplicationController"): ("v1", "replicationcontrollers"),
    ("apps", "Deployment"): ("v1", "deployments"),
    ("apps", "StatefulSet"): ("v1", "statefulsets"),
    ("apps", "DaemonSet"): ("v1", "daemonsets"),
    ("apps", "ReplicaSet"): ("v1", "replicasets"),
    ("batch", "Job"): ("v1", "jobs"),
    ("batch", "CronJob"): ("v1", "cronjobs"),
    ("serving.kserve.io", "InferenceService"): ("v1beta1", "inferenceservices"),
    ("ray.io", "RayCluster"): ("v1", "rayclusters"),
    ("ray.io", "RayJob"): ("v1", "rayjobs"),
    ("ray.io", "RayService"): ("v1", "rayservices"),
}
for _kind in ("PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob"):
    _KNOWN[("kubeflow.org", _kind)] = ("v1", _kind.lower() + "s")

# Listing order: owners before what they own, so an owned object's owner is already known when
# it arrives and its body need not be kept (custom kinds first, pods last).
_RANK = {
    "CronJob": 10,
    "Deployment": 20,
    "StatefulSet": 20,
    "DaemonSet": 20,
    "ReplicationController": 20,
    "Job": 30,
    "ReplicaSet": 40,
    "Pod": 100,
}


@dataclass(frozen=True, eq=False)  # hashed per object listed: by identity, not by its KindSpec
class ScanTarget:
    group: str
    kind: str
    version: str | None  # None: to discover
    resource: str | None  # None: to discover
    spec: KindSpec

    @property
    def api_version(self) -> str:
        version = self.version or "?"
        return f"{self.group}/{version}" if self.group else version

    @property
    def is_pod(self) -> bool:
        return self.group == "" and self.kind == "Pod"

    @property
    def label(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


def scan_targets(kinds: KindTable) -> tuple[ScanTarget, ...]:
    """Every kind of the table, parents first, Pods last."""
    found: list[ScanTarget] = []
    for spec in kinds:
        version, resource = _KNOWN.get((spec.group, spec.kind), (None, None))
        found.append(ScanTarget(spec.group, spec.kind, version, resource, spec))
    return tuple(
        sorted(
            found,
            key=lambda t: (_RANK.get(t.kind, 0) if t.group in ("", "apps", "batch") else 0, t.group, t.kind),
        )
    )


def shard_of(namespace: str, count: int) -> int:
    """The shard a namespace belongs to: a stable hash (the same on every machine and run)."""
    digest = hashlib.sha256(namespace.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Scope:
    """Which objects the scan looks at: namespaces (None: all) and a shard."""

    namespaces: frozenset[str] | None = None
    shard_index: int = 0
    shard_count: int = 1

    def includes(self, namespace: str) -> bool:
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return self.shard_count == 1 or shard_of(namespace, self.shard_count) == self.shard_index

    @classmethod
    def of(cls, namespaces: Iterable[str], shard: tuple[int, int] | None) -> Scope:
        ns = frozenset(namespaces) or None
        index, count = shard or (0, 1)
        return cls(ns, index, count)
