"""Kepler >= 0.11.4: ``kepler_pod_gpu_joules_total`` (labels ``pod_name``, ``pod_namespace``,
``node_name``), CPU from ``kepler_pod_cpu_joules_total{zone="package"}`` only (zones overlap and
must not be added). Kepler attributes a device's energy to pods itself (exclusive 100%, shared
by activity), so its pod figures are "apportioned" by Kepler; the node's GPU energy not attributed
to any pod is unallocated. Versions 0.10.0 to 0.11.3 export no GPU metrics at all.
"""

from __future__ import annotations

from collections import defaultdict

from guard.energy.prometheus import PrometheusClient
from guard.energy.sources.base import Row, Window, increase_kwh, label

POD_GPU = "kepler_pod_gpu_joules_total"
NODE_GPU = "kepler_node_gpu_joules_total"
POD_CPU = 'kepler_pod_cpu_joules_total{zone="package"}'
NOTE = "attributed to the pod by Kepler"


class KeplerSource:
    schema = "kepler >= 0.11.4 (kepler_pod_gpu_joules_total)"

    def __init__(self, client: PrometheusClient, *, gpu: bool = True, cpu: bool = True) -> None:
        self.client = client
        self.gpu = gpu
        self.cpu = cpu

    @staticmethod
    def pod_query(metric: str, window: Window) -> str:
        return increase_kwh(metric, "pod_namespace, pod_name, node_name", window)

    @staticmethod
    def node_query(window: Window) -> str:
        return increase_kwh(NODE_GPU, "node_name", window)

    def rows(self, window: Window) -> list[Row]:
        client = self.client
        out: list[Row] = []
        if self.gpu:
            q = self.pod_query(POD_GPU, window)
            per_node: dict[str, float] = defaultdict(float)
            for s in client.query(q, window.until):
                node = label(s, "node_name")
                per_node[node] += s.value
                out.append(
                    Row(
                        namespace=label(s, "pod_namespace"),
                        pod=label(s, "pod_name"),
                        kwh=max(0.0, s.value),
                        method="apportioned",
                        component="gpu",
                        source=q,
                        node=node or None,
                        note=NOTE,
                    )
                )
            nq = self.node_query(window)
            for s in client.query(nq, window.until):
                node = label(s, "node_name")
                rest = s.value - per_node.get(node, 0.0)
                if rest > 0:
                    out.append(
                        Row(
                            namespace="",
                            pod="",
                            kwh=rest,
                            method="measured",
                            component="gpu",
                            source=f"{nq} minus {q}",
                            node=node or None,
                            note="node GPU energy no pod was charged",
                        )
                    )
        if self.cpu:
            q = self.pod_query(POD_CPU, window)
            for s in client.query(q, window.until):
                out.append(
                    Row(
                        namespace=label(s, "pod_namespace"),
                        pod=label(s, "pod_name"),
                        kwh=max(0.0, s.value),
                        method="apportioned",
                        component="cpu",
                        source=q,
                        node=label(s, "node_name") or None,
                        note=NOTE,
                    )
                )
        return out
