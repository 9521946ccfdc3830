"""Which energy metrics a Prometheus server has over a window: one query, answered by name."""

from __future__ import annotations

from dataclasses import dataclass

from guard.energy.prometheus import PrometheusClient
from guard.energy.sources.base import EnergySource, Window
from guard.energy.sources.dcgm import ENERGY, POWER, DcgmSource
from guard.energy.sources.kepler import POD_CPU, POD_GPU, KeplerSource
from guard.energy.sources.kepler_legacy import CONTAINER_CPU, CONTAINER_GPU, KeplerLegacySource

KNOWN = (ENERGY, POWER, POD_GPU, POD_CPU.split("{")[0], CONTAINER_GPU, CONTAINER_CPU)


def detection_query(window: Window) -> str:
    names = "|".join(KNOWN)
    return f'count by (__name__) (last_over_time({{__name__=~"{names}"}}[{window.range()}]))'


@dataclass(frozen=True)
class Detected:
    names: frozenset[str]
    sources: tuple[EnergySource, ...]
    query: str

    @property
    def schemas(self) -> tuple[str, ...]:
        return tuple(s.schema for s in self.sources)


def detect(
    client: PrometheusClient, window: Window, *, resolution_seconds: float, mig_slices_per_gpu: int
) -> Detected:
    """The sources to read: GPU from dcgm-exporter (counter, else power) before Kepler >= 0.11.4
    before Kepler < 0.10; CPU from Kepler (new schema before the old one)."""
    q = detection_query(window)
    names = frozenset(s.labels.get("__name__", "") for s in client.query(q, window.until))
    sources: list[EnergySource] = []
    gpu_done = False
    if ENERGY in names or POWER in names:
        sources.append(
            DcgmSource(
                client,
                counter=ENERGY in names,
                resolution_seconds=resolution_seconds,
                mig_slices_per_gpu=mig_slices_per_gpu,
            )
        )
        gpu_done = True
    new_cpu = POD_CPU.split("{")[0] in names
    if POD_GPU in names or new_cpu:
        gpu = POD_GPU in names and not gpu_done
        sources.append(KeplerSource(client, gpu=gpu, cpu=new_cpu))
        gpu_done = gpu_done or gpu
    if CONTAINER_GPU in names or (CONTAINER_CPU in names and not new_cpu):
        gpu = CONTAINER_GPU in names and not gpu_done
        cpu = CONTAINER_CPU in names and not new_cpu
        if gpu or cpu:
            sources.append(KeplerLegacySource(client, gpu=gpu, cpu=cpu))
    return Detected(names, tuple(sources), q)
