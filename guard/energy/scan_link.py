"""What ``guard scan`` gives the energy scan: the pods it listed (start, end, GPUs, node) for
estimates and embodied shares, taken as they pass to the scan's inventory, so the cluster is
listed once. ``PodTap`` wraps any ``guard.scan.sources.ObjectSource``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from guard.config import ClusterFacts
from guard.energy.sources.estimate import PodRecord, pod_record
from guard.errors import UsageError

if TYPE_CHECKING:
    from guard.scan.sources import ObjectSink, ObjectSource, SourceOutcome
    from guard.scan.targets import ScanTarget, Scope


class _TeeSink:
    def __init__(self, sink: ObjectSink, tap: PodTap) -> None:
        self._sink = sink
        self._tap = tap

    def begin(self, target: ScanTarget) -> None:
        if target.is_pod:
            self._tap.staged[target] = []
        self._sink.begin(target)

    def add(self, target: ScanTarget, obj: Mapping[str, Any]) -> None:
        if target.is_pod:
            try:
                self._tap.staged.setdefault(target, []).append(pod_record(obj, self._tap.cluster))
            except UsageError as err:  # a pod guard cannot read: the audit reports it; no estimate
                self._tap.unreadable.append(str(err))
        self._sink.add(target, obj)

    def commit(self, target: ScanTarget) -> None:
        if target.is_pod:
            self._tap.pods.extend(self._tap.staged.pop(target, []))
        self._sink.commit(target)


class PodTap:
    """An ObjectSource that records the pods another source delivers (a 410 restart discards what
    the kind had staged, as the inventory does)."""

    def __init__(self, source: ObjectSource, cluster: ClusterFacts) -> None:
        self.source = source
        self.cluster = cluster
        self.pods: list[PodRecord] = []
        self.staged: dict[ScanTarget, list[PodRecord]] = {}
        self.unreadable: list[str] = []

    def collect(self, targets: Sequence[ScanTarget], scope: Scope, sink: ObjectSink) -> SourceOutcome:
        return self.source.collect(targets, scope, _TeeSink(sink, self))
