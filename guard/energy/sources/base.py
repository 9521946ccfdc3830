"""The energy-source seam: one Protocol, one file per backend.

A source turns a window into rows: the energy of one pod (or of no pod) on one device or one
node, in kWh, with the method and the query it came from. Apportioning shared devices is done
here by the backend that knows the devices (``dcgm``); Kepler attributes energy to pods itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from guard.energy.models import Component, Method
from guard.energy.prometheus import Sample

JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()

    def range(self) -> str:
        """The window as a PromQL duration (whole seconds, at least 1 s)."""
        return f"{max(1, round(self.seconds))}s"


@dataclass(frozen=True)
class Row:
    """Energy of one pod on one device (``pod`` empty: no pod, i.e. unallocated)."""

    namespace: str
    pod: str
    kwh: float
    method: Method
    component: Component
    source: str
    device: str | None = None
    node: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Utilisation:
    namespace: str
    pod: str
    percent: float
    source: str


class EnergySource(Protocol):
    """One schema of energy metrics in Prometheus."""

    schema: str

    def rows(self, window: Window) -> list[Row]:
        """Energy per pod and device (or node) over the window."""
        ...


def increase_kwh(metric: str, by: str, window: Window) -> str:
    """PromQL: a joules counter's increase over the window, summed ``by`` the labels, in kWh
    (``increase`` handles counter resets and gaps)."""
    return f"sum by ({by}) (increase({metric}[{window.range()}])) / {JOULES_PER_KWH:g}"


def label(sample: Sample, *names: str) -> str:
    for name in names:
        value = sample.labels.get(name, "")
        if value:
            return value
    return ""


def pod_of(sample: Sample) -> tuple[str, str]:
    """A series' (namespace, pod), read as one spelling: ``pod``/``namespace`` (dcgm-exporter),
    else ``pod_name``/``pod_namespace`` (dcgm-exporter --use-old-namespace, Kepler); ("", "")
    when it names no pod. Never the pod of one spelling with the namespace of the other."""
    if pod := sample.labels.get("pod", ""):
        return sample.labels.get("namespace", ""), pod
    if pod := sample.labels.get("pod_name", ""):
        return sample.labels.get("pod_namespace", ""), pod
    return "", ""
