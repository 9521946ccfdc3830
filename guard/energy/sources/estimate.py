"""The estimate, when nothing measures a pod's GPUs: reserved GPUs x board power x time running.

As SCI counts reserved hardware, a GPU a pod holds counts in full while the pod runs, idle or not.
Board power comes from ``cluster.gpu_products`` (the product table the carbon policy uses,
overridable per cluster): the product of the pod's node (``nvidia.com/gpu.product``), else the
product the pod is confined to, else the largest board power known (an upper bound, said so).
Time running is the overlap of the pod's start..end (end: now when still running) with the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from guard.config import ClusterFacts
from guard.energy.sources.base import Row, Window
from guard.errors import UsageError
from guard.policy.workload import summarize_pod_spec

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


@dataclass(frozen=True)
class PodRecord:
    """What the estimate (and the idle-GPU finding) needs of a pod."""

    namespace: str
    pod: str
    gpus: int
    start: datetime | None
    end: datetime | None = None
    node: str | None = None
    products: tuple[str, ...] = ()


def _dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...`` through mappings only (None when a step is missing or not a mapping)."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def node_labels(nodes: Any) -> dict[str, dict[str, str]]:
    """Each node's labels from a NodeList (``kubectl get nodes -o json``); items that are not
    nodes are skipped, a document that is not a list is a UsageError."""
    if nodes is None:
        return {}
    items = nodes.get("items") if isinstance(nodes, Mapping) else None
    if not isinstance(items, list):
        raise UsageError("nodes: expected a NodeList (a JSON object with items), found something else")
    out: dict[str, dict[str, str]] = {}
    for node in items:
        name, labels = _dig(node, "metadata", "name"), _dig(node, "metadata", "labels")
        if isinstance(name, str) and name:
            out[name] = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
    return out


def _time(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as err:
        raise UsageError(f"{where}: expected an RFC 3339 time, found {str(value)[:40]!r}") from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def pod_record(
    pod: Mapping[str, Any], cluster: ClusterFacts, node_products: Mapping[str, str] | None = None
) -> PodRecord:
    """A PodRecord from a Pod object (as ``kubectl get pods -o json`` gives it)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping) or not isinstance(status, Mapping):
        raise UsageError("a pod: expected metadata, spec and status mappings")
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace", "default"))
    where = f"pod {namespace}/{name}"
    try:
        summary = summarize_pod_spec(spec, cluster, name=name, namespace=namespace)
    except UsageError as err:
        raise UsageError(f"{where}: {err}") from err
    node = str(spec.get("nodeName") or "") or None
    products: tuple[str, ...] = tuple(summary["placement"].get("gpuProducts") or ())
    if node and node_products and node in node_products:
        products = (node_products[node],)
    ends = []
    statuses = status.get("containerStatuses")
    for cs in statuses if isinstance(statuses, list) else []:
        terminated = _dig(cs, "state", "terminated")
        if isinstance(terminated, Mapping):
            ends.append(_time(terminated.get("finishedAt"), f"{where}: finishedAt"))
    end = None
    if status.get("phase") in ("Succeeded", "Failed"):
        known = [e for e in ends if e is not None]
        end = max(known) if known else None
    return PodRecord(
        namespace=namespace,
        pod=name,
        gpus=int(summary["gpu"]["total"]),
        start=_time(status.get("startTime"), f"{where}: status.startTime"),
        end=end,
        node=node,
        products=products,
    )


def pod_records(doc: Any, cluster: ClusterFacts, nodes: Any = None) -> list[PodRecord]:
    """PodRecords from a PodList (``kubectl get pods -A -o json``), with the nodes' GPU product
    from a NodeList when given."""
    items = doc.get("items") if isinstance(doc, Mapping) else None
    if not isinstance(items, list):
        raise UsageError("pods: expected a PodList (a JSON object with items), found something else")
    node_products = {
        n: labels[GPU_PRODUCT_LABEL]
        for n, labels in node_labels(nodes).items()
        if labels.get(GPU_PRODUCT_LABEL)
    }
    return [pod_record(p, cluster, node_products) for p in items if isinstance(p, Mapping)]


class EstimateSource:
    schema = "estimate: reserved GPUs x board power (cluster.gpuProducts) x time running"

    def __init__(
        self, pods: Sequence[PodRecord], cluster: ClusterFacts, *, skip: Iterable[tuple[str, str]] = ()
    ) -> None:
        self.pods = pods
        self.cluster = cluster
        self.skip = set(skip)

    def board_power(self, products: tuple[str, ...]) -> tuple[float, str]:
        known = [p for p in products if p in self.cluster.gpu_products]
        if known and len(known) == len(products):
            name = max(known, key=lambda p: self.cluster.gpu_products[p].board_power_w)
            return self.cluster.gpu_products[name].board_power_w, f"cluster.gpuProducts[{name}].boardPowerW"
        name = max(self.cluster.gpu_products, key=lambda p: self.cluster.gpu_products[p].board_power_w)
        return self.cluster.gpu_products[
            name
        ].board_power_w, f"the largest board power known ({name}): product unknown, an upper bound"

    def rows(self, window: Window) -> list[Row]:
        out = []
        for p in self.pods:
            if p.gpus <= 0 or p.start is None or (p.namespace, p.pod) in self.skip:
                continue
            start = max(p.start, window.since)
            end = min(p.end or window.until, window.until)
            hours = max(0.0, (end - start).total_seconds() / 3600)
            if hours <= 0:
                continue
            watts, table = self.board_power(p.products)
            kwh = p.gpus * watts * hours / 1000
            source = f"{p.gpus} GPUs x {watts:g} W ({table}) x {hours:.3f} h running in the window"
            out.append(
                Row(
                    namespace=p.namespace,
                    pod=p.pod,
                    kwh=kwh,
                    method="estimated",
                    component="gpu",
                    source=source,
                    node=p.node,
                )
            )
        return out
