"""Which sources are read for which metrics (one detection query), on a stand-in API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from guard.energy.prometheus import PrometheusClient
from guard.energy.settings import PrometheusSettings
from guard.energy.sources.base import Window
from guard.energy.sources.dcgm import DcgmSource
from guard.energy.sources.detect import detect
from guard.energy.sources.kepler import KeplerSource
from guard.energy.sources.kepler_legacy import KeplerLegacySource

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def client_with(names: list[str]) -> PrometheusClient:
    def handler(request: httpx.Request) -> httpx.Response:
        result = [{"metric": {"__name__": n}, "value": [0, "3"]} for n in names]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    return PrometheusClient(
        PrometheusSettings.model_validate({"url": "http://p"}), transport=httpx.MockTransport(handler)
    )


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_POWER_USAGE"], [(DcgmSource, True, None)]),
        (["DCGM_FI_DEV_POWER_USAGE"], [(DcgmSource, False, None)]),
        # dcgm for GPUs, Kepler for CPU only
        (
            ["DCGM_FI_DEV_POWER_USAGE", "kepler_pod_gpu_joules_total", "kepler_pod_cpu_joules_total"],
            [(DcgmSource, False, None), (KeplerSource, False, True)],
        ),
        (["kepler_pod_gpu_joules_total", "kepler_pod_cpu_joules_total"], [(KeplerSource, True, True)]),
        (
            ["kepler_container_gpu_joules_total", "kepler_container_package_joules_total"],
            [(KeplerLegacySource, True, True)],
        ),
        # both Kepler schemas (an upgrade inside the window): the new one wins for both
        (
            [
                "kepler_pod_gpu_joules_total",
                "kepler_pod_cpu_joules_total",
                "kepler_container_gpu_joules_total",
                "kepler_container_package_joules_total",
            ],
            [(KeplerSource, True, True)],
        ),
        ([], []),
    ],
)
def test_detection(names: list[str], expected: list[tuple[type, bool, bool | None]]) -> None:
    found = detect(
        client_with(names), Window(NOW - timedelta(days=1), NOW), resolution_seconds=60, mig_slices_per_gpu=7
    )
    shape: list[tuple[type, bool, bool | None]] = []
    for s in found.sources:
        if isinstance(s, DcgmSource):
            shape.append((DcgmSource, s.counter, None))
        else:
            assert isinstance(s, KeplerSource | KeplerLegacySource)
            shape.append((type(s), s.gpu, s.cpu))
    assert shape == expected
    assert "last_over_time" in found.query
