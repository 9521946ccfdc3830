"""Kepler before 0.10 (e.g. 0.7.x): ``kepler_container_gpu_joules_total`` and, for CPU,
``kepler_container_package_joules_total``, with labels ``pod_name``, ``container_namespace`` and
``mode`` (``dynamic`` or ``idle``: both are energy Kepler charged to the container, and added).
Containers are added up per pod. This schema has no per-node GPU total, so unallocated GPU energy
is not measured with it (the result says so).
"""

from __future__ import annotations

from guard.energy.prometheus import PrometheusClient
from guard.energy.sources.base import Row, Window, increase_kwh, label

CONTAINER_GPU = "kepler_container_gpu_joules_total"
CONTAINER_CPU = "kepler_container_package_joules_total"
NOTE = "attributed to the pod's containers by Kepler (pre-0.10 schema, modes dynamic + idle)"


class KeplerLegacySource:
    schema = "kepler < 0.10 (kepler_container_gpu_joules_total, container_namespace)"

    def __init__(self, client: PrometheusClient, *, gpu: bool = True, cpu: bool = True) -> None:
        self.client = client
        self.gpu = gpu
        self.cpu = cpu

    @staticmethod
    def query(metric: str, window: Window) -> str:
        return increase_kwh(metric, "container_namespace, pod_name", window)

    def rows(self, window: Window) -> list[Row]:
        client = self.client
        out: list[Row] = []
        for enabled, metric, component in (
            (self.gpu, CONTAINER_GPU, "gpu"),
            (self.cpu, CONTAINER_CPU, "cpu"),
        ):
            if not enabled:
                continue
            q = self.query(metric, window)
            for s in client.query(q, window.until):
                out.append(
                    Row(
                        namespace=label(s, "container_namespace"),
                        pod=label(s, "pod_name"),
                        kwh=max(0.0, s.value),
                        method="apportioned",
                        component=component,  # type: ignore[arg-type]
                        source=q,
                        note=NOTE,
                    )
                )
        return out
