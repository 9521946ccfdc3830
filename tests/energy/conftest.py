"""Real Prometheus 2.42 servers with backfilled GPU energy history (dcgm-exporter and Kepler label
sets as the exporters publish them), and the exporter's own counters to check guard against.

History: samples every 60 s for 30 days before END, every 1 s in the last 10 minutes (so windows
from 10 s to 30 days can be read). ``Scenario.expected(series, since, until)`` is the energy the
exporter's counters show over a window: the increments between consecutive samples, a drop being
a counter reset (the value after it counted from zero), as ``increase()`` defines it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from guard.testing.prometheus import OpenMetrics, PrometheusServer, available, backfill

DAY = 86400.0
HISTORY = 30 * DAY
END = float(int(time.time() // 3600) * 3600 - 3600)  # a whole hour, an hour ago
START = END - HISTORY - 3600  # an hour more, so that a 30-day window has samples before it
FINE = 600.0  # the last 10 minutes at 1 s

pytestmark = pytest.mark.skipif(not available(), reason="needs Debian's prometheus and promtool")


def sample_times(start: float = START, end: float = END) -> list[float]:
    coarse = [float(t) for t in range(int(start), int(end - FINE), 60)]
    return coarse + [float(t) for t in range(int(end - FINE), int(end) + 1)]


@dataclass
class Series:
    name: str
    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass
class Scenario:
    series: list[Series] = field(default_factory=list)

    def counter(
        self,
        name: str,
        labels: dict[str, str],
        watts: float,
        *,
        start: float = START,
        end: float = END,
        resets: tuple[float, ...] = (),
        gaps: tuple[tuple[float, float], ...] = (),
        offset_j: float = 5e6,
        unit: float = 1000.0,
    ) -> Series:
        """A counter growing at ``watts`` (in mJ with unit=1000, J with unit=1) from ``start``
        to ``end``, falling to zero at each reset time, with no samples in the ``gaps``."""
        points = []
        for t in sample_times(start, end):
            if any(a <= t < b for a, b in gaps):  # the exporter was not scraped
                continue
            last_reset = max((r for r in resets if r <= t), default=None)
            joules = watts * (t - last_reset) if last_reset is not None else offset_j + watts * (t - START)
            points.append((t, joules * unit))
        s = Series(name, labels, points)
        self.series.append(s)
        return s

    def gauge(self, name: str, labels: dict[str, str], value: float) -> Series:
        s = Series(name, labels, [(t, value) for t in sample_times()])
        self.series.append(s)
        return s

    def history(self) -> OpenMetrics:
        om = OpenMetrics()
        for s in self.series:
            om.series(s.name, s.labels, s.points)
        return om

    @staticmethod
    def expected(series: Series, since: float, until: float) -> float:
        """The exporter's counter increments in [since, until], in the series' unit."""
        pts = [(t, v) for t, v in series.points if since <= t <= until]
        total = 0.0
        for (_, a), (_, b) in itertools.pairwise(pts):
            total += b - a if b >= a else b
        return total


def dcgm_labels(
    gpu: int,
    uuid: str,
    host: str,
    pod: str | None = None,
    namespace: str | None = None,
    *,
    old: bool = False,
    mig: tuple[str, str] | None = None,
    model: str = "NVIDIA H100 80GB HBM3",
) -> dict[str, str]:
    """dcgm-exporter's label set (Kubernetes mode adds pod, namespace, container)."""
    labels = {
        "gpu": str(gpu),
        "UUID": uuid,
        "pci_bus_id": f"00000000:{gpu + 10:02X}:00.0",
        "device": f"nvidia{gpu}",
        "modelName": model,
        "Hostname": host,
        "DCGM_FI_DRIVER_VERSION": "550.54.15",
    }
    if mig is not None:
        labels["GPU_I_ID"], labels["GPU_I_PROFILE"] = mig
    if pod is not None and namespace is not None:
        if old:
            labels |= {"pod_name": pod, "pod_namespace": namespace, "container_name": "main"}
        else:
            labels |= {"pod": pod, "namespace": namespace, "container": "main"}
    return labels


E = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
MOVE = END - 15 * DAY


def dcgm_scenario() -> tuple[Scenario, dict[str, list[Series]]]:
    sc = Scenario()
    named: dict[str, list[Series]] = {}
    # exclusive: one pod, two whole GPUs
    named["exclusive"] = [
        sc.counter(E, dcgm_labels(0, "GPU-a1", "n1", "train-a", "team-a"), 700),
        # two days without scrapes (20 to 18 days ago): the counter counted through them
        sc.counter(
            E,
            dcgm_labels(1, "GPU-a2", "n1", "train-a", "team-a"),
            650,
            gaps=((END - 20 * DAY, END - 18 * DAY),),
        ),
    ]
    # time-sliced: three pods on one GPU, the device counter repeated once per pod
    named["shared"] = [
        sc.counter(E, dcgm_labels(0, "GPU-s", "n2", f"infer-{i}", "team-b"), 300) for i in range(3)
    ]
    # MIG: 3g.40gb held by a pod, 4g.40gb held by none; both series carry the parent GPU's counter
    named["mig"] = [
        sc.counter(E, dcgm_labels(0, "GPU-m", "n3", "mig-a", "team-c", mig=("1", "3g.40gb")), 400),
        sc.counter(E, dcgm_labels(0, "GPU-m", "n3", mig=("2", "4g.40gb")), 400),
    ]
    # counter resets (15 days ago and 90 s ago)
    named["reset"] = [
        sc.counter(
            E, dcgm_labels(0, "GPU-r", "n4", "reset-pod", "team-a"), 500, resets=(END - 15 * DAY, END - 90)
        )
    ]
    # no pod labels: unallocated
    named["unlabelled"] = [sc.counter(E, dcgm_labels(0, "GPU-u", "n5"), 200)]
    # a pod that moved from GPU-x1 (node n6) to GPU-x2 (node n7) 15 days ago
    named["moved"] = [
        sc.counter(E, dcgm_labels(0, "GPU-x1", "n6", "mover", "team-b"), 600, end=MOVE),
        sc.counter(E, dcgm_labels(0, "GPU-x2", "n7", "mover", "team-b"), 600, start=MOVE + 60),
    ]
    named["moved_rest"] = [
        sc.counter(E, dcgm_labels(0, "GPU-x1", "n6"), 100, start=MOVE + 60),
        sc.counter(E, dcgm_labels(0, "GPU-x2", "n7"), 100, end=MOVE),
    ]
    # time-sliced, sharers changing: join-1 alone for 15 days, then join-2 shares the GPU with it
    named["joined"] = [
        sc.counter(E, dcgm_labels(0, "GPU-j", "n8", "join-1", "team-c"), 400),
        sc.counter(E, dcgm_labels(0, "GPU-j", "n8", "join-2", "team-c"), 400, start=MOVE),
    ]
    # utilisation: train-a busy, infer pods idle
    sc.gauge("DCGM_FI_PROF_GR_ENGINE_ACTIVE", dcgm_labels(0, "GPU-a1", "n1", "train-a", "team-a"), 0.9)
    sc.gauge("DCGM_FI_PROF_GR_ENGINE_ACTIVE", dcgm_labels(0, "GPU-s", "n2", "infer-0", "team-b"), 0.01)
    return sc, named


def kepler_scenario() -> tuple[Scenario, dict[str, list[Series]]]:
    """Kepler >= 0.11.4: pod GPU and CPU (all zones; only package is read) and node GPU joules."""
    sc = Scenario()
    named: dict[str, list[Series]] = {}
    pod = {
        "pod_id": "6f1c",
        "pod_name": "train-k",
        "pod_namespace": "team-a",
        "state": "running",
        "node_name": "k1",
    }
    named["pod_gpu"] = [sc.counter("kepler_pod_gpu_joules_total", pod, 350, unit=1.0)]
    named["pod_cpu"] = [sc.counter("kepler_pod_cpu_joules_total", pod | {"zone": "package"}, 80, unit=1.0)]
    sc.counter("kepler_pod_cpu_joules_total", pod | {"zone": "core"}, 60, unit=1.0)  # overlaps package
    sc.counter("kepler_pod_cpu_joules_total", pod | {"zone": "dram"}, 10, unit=1.0)
    node = {
        "gpu": "0",
        "gpu_uuid": "GPU-k",
        "gpu_name": "NVIDIA H100 PCIe",
        "vendor": "nvidia",
        "node_name": "k1",
    }
    named["node_gpu"] = [sc.counter("kepler_node_gpu_joules_total", node, 400, unit=1.0)]
    return sc, named


def legacy_scenario() -> tuple[Scenario, dict[str, list[Series]]]:
    """Kepler < 0.10: container metrics with container_namespace and mode dynamic / idle."""
    sc = Scenario()
    named: dict[str, list[Series]] = {}
    base = {
        "container_id": "c0ffee",
        "pod_name": "old-k",
        "container_name": "main",
        "container_namespace": "team-b",
    }
    named["gpu"] = [
        sc.counter("kepler_container_gpu_joules_total", base | {"mode": "dynamic"}, 200, unit=1.0),
        sc.counter("kepler_container_gpu_joules_total", base | {"mode": "idle"}, 50, unit=1.0),
    ]
    named["cpu"] = [
        sc.counter("kepler_container_package_joules_total", base | {"mode": "dynamic"}, 40, unit=1.0)
    ]
    return sc, named


def power_scenario() -> tuple[Scenario, dict[str, list[Series]]]:
    """No energy counter: the power gauge only, with --use-old-namespace labels; one time-sliced
    GPU (two pods) and one exclusive GPU."""
    sc = Scenario()
    named: dict[str, list[Series]] = {}
    p = "DCGM_FI_DEV_POWER_USAGE"
    named["shared"] = [
        sc.gauge(p, dcgm_labels(0, "GPU-p", "p1", f"old-{i}", "team-c", old=True), 350) for i in range(2)
    ]
    named["exclusive"] = [sc.gauge(p, dcgm_labels(1, "GPU-q", "p1", "solo", "team-c", old=True), 72)]
    return sc, named


@dataclass
class Backfilled:
    server: PrometheusServer
    scenario: Scenario
    named: dict[str, list[Series]]


def _start(tmp: Path, build: object) -> Iterator[Backfilled]:
    scenario, named = build()  # type: ignore[operator]
    server = PrometheusServer(tmp)
    backfill(scenario.history(), server.storage)
    with server:
        yield Backfilled(server, scenario, named)


@pytest.fixture(scope="module")
def prom_dcgm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    yield from _start(tmp_path_factory.mktemp("prom-dcgm"), dcgm_scenario)


@pytest.fixture(scope="module")
def prom_kepler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    yield from _start(tmp_path_factory.mktemp("prom-kepler"), kepler_scenario)


@pytest.fixture(scope="module")
def prom_legacy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    yield from _start(tmp_path_factory.mktemp("prom-legacy"), legacy_scenario)


@pytest.fixture(scope="module")
def prom_power(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    yield from _start(tmp_path_factory.mktemp("prom-power"), power_scenario)


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
