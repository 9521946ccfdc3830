"""guard's energy figures against the exporter's own counters, on a real Prometheus 2.42."""

from __future__ import annotations

from typing import Any

import pytest

from guard.config import GuardConfig, parse_config
from guard.energy.collect import scan_energy
from guard.energy.models import EnergySection, WorkloadEnergy
from guard.energy.prometheus import PrometheusClient
from guard.energy.settings import PrometheusSettings
from guard.energy.sources.base import Window

from .conftest import DAY, END, Backfilled, Scenario, Series, at

WINDOWS = [10.0, 60.0, 3600.0, DAY, 30 * DAY]
GAP_WINDOWS = [19 * DAY, 25 * DAY]  # starting inside, and before, a two-day scrape gap of GPU-a2
MJ = 3.6e9
J = 3.6e6


def config(**energy: Any) -> GuardConfig:
    return parse_config(
        {
            "tenants": [
                {
                    "name": "team-a",
                    "namespaces": ["team-a"],
                    "carbon": {"budgetKgCO2e": 5, "budgetKwh": 100000},
                },
                {"name": "team-b", "namespaces": ["team-b"], "carbon": {"budgetKgCO2e": 100000}},
                {"name": "team-c", "namespaces": ["team-c"]},
            ],
            "energy": {"region": "europe-west4", **energy},
        }
    )


def scan(
    server: Backfilled, seconds: float, cfg: GuardConfig | None = None
) -> tuple[EnergySection, PrometheusClient]:
    client = PrometheusClient(PrometheusSettings(url=server.server.url))
    return scan_energy(cfg or config(), client, Window(at(END - seconds), at(END))), client


def workload(section: EnergySection, pod: str) -> WorkloadEnergy:
    found = [w for w in section.workloads if w.pod == pod]
    assert len(found) == 1, [w.pod for w in section.workloads]
    return found[0]


def expected(series: list[Series], seconds: float, unit: float = MJ) -> float:
    return sum(Scenario.expected(s, END - seconds, END) for s in series) / unit


def close(found: float, want: float, rel: float = 0.01) -> bool:
    return want > 0 and abs(found - want) <= rel * want


@pytest.mark.parametrize("seconds", WINDOWS + GAP_WINDOWS)
def test_exclusive_gpus_equal_the_counters(prom_dcgm: Backfilled, seconds: float) -> None:
    section, _ = scan(prom_dcgm, seconds)
    w = workload(section, "train-a")
    want = expected(prom_dcgm.named["exclusive"], seconds)
    assert close(w.kwh, want), (w.kwh, want)
    assert w.kwh_by_method.keys() == {"measured"}
    assert {f.device for f in w.figures} == {"GPU-a1", "GPU-a2"}
    assert all("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" in f.source for f in w.figures)
    assert w.tenant == "team-a"


@pytest.mark.parametrize("seconds", WINDOWS)
def test_time_sliced_gpu_is_apportioned_and_adds_up_to_the_device(
    prom_dcgm: Backfilled, seconds: float
) -> None:
    section, _ = scan(prom_dcgm, seconds)
    device = expected(prom_dcgm.named["shared"][:1], seconds)  # the device counter, repeated per pod
    pods = [workload(section, f"infer-{i}") for i in range(3)]
    assert close(sum(p.kwh for p in pods), device), (sum(p.kwh for p in pods), device)
    for p in pods:
        assert close(p.kwh, device / 3)
        assert p.kwh_by_method.keys() == {"apportioned"}
        assert "count by (UUID, GPU_I_ID)" in p.figures[0].source


@pytest.mark.parametrize("seconds", [10.0, 3600.0, 30 * DAY])
def test_mig_slice_share_and_the_rest_unallocated(prom_dcgm: Backfilled, seconds: float) -> None:
    section, _ = scan(prom_dcgm, seconds)
    device = expected(prom_dcgm.named["mig"][:1], seconds)
    w = workload(section, "mig-a")
    assert close(w.kwh, device * 3 / 7)
    assert w.kwh_by_method.keys() == {"apportioned"}
    assert "3/7" in (w.figures[0].note or "")
    unlabelled = expected(prom_dcgm.named["unlabelled"], seconds)
    moved_rest = expected(prom_dcgm.named["moved_rest"], seconds)
    assert close(section.unallocated.kwh, device * 4 / 7 + unlabelled + moved_rest)


@pytest.mark.parametrize("seconds", [60.0, 3600.0, 20 * DAY, 30 * DAY])
def test_counter_resets_are_counted_across(prom_dcgm: Backfilled, seconds: float) -> None:
    section, _ = scan(prom_dcgm, seconds)
    w = workload(section, "reset-pod")
    want = expected(prom_dcgm.named["reset"], seconds)
    assert close(w.kwh, want), (w.kwh, want)
    assert w.kwh > 0


def test_missing_pod_labels_are_unallocated_and_charged_to_no_tenant(prom_dcgm: Backfilled) -> None:
    section, _ = scan(prom_dcgm, DAY)
    assert "GPU-u" in section.unallocated.devices
    assert all(w.pod for w in section.workloads)
    by_tenant = {t.tenant: t.kwh for t in section.tenants}
    charged = sum(w.kwh for w in section.workloads if w.tenant)
    assert close(sum(by_tenant.values()), charged)
    assert close(section.total_kwh, charged)


@pytest.mark.parametrize("seconds", [3600.0, 20 * DAY, 30 * DAY])
def test_a_pod_that_moved_between_gpus_adds_up(prom_dcgm: Backfilled, seconds: float) -> None:
    section, _ = scan(prom_dcgm, seconds)
    w = workload(section, "mover")
    want = expected(prom_dcgm.named["moved"], seconds)
    assert close(w.kwh, want), (w.kwh, want)
    if seconds > 15 * DAY:
        assert {f.device for f in w.figures} == {"GPU-x1", "GPU-x2"}
        assert {f.node for f in w.figures} == {"n6", "n7"}


def test_schema_named_and_queries_fixed(prom_dcgm: Backfilled) -> None:
    section, client = scan(prom_dcgm, DAY)
    assert section.source.kind == "prometheus"
    assert section.source.url == prom_dcgm.server.url
    assert section.source.schema_detected[0].startswith("dcgm-exporter DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
    assert "pod/namespace" in section.source.schema_detected[0]
    # detection, energy, the shared-device split, utilisation; and a period-to-date rerun for budgets
    assert client.queries <= 8


def test_idle_gpu_is_an_efficiency_finding(prom_dcgm: Backfilled) -> None:
    section, _ = scan(prom_dcgm, 3600.0)
    idle = [f for f in section.findings if f.rule == "gpu_idle"]
    assert [(f.pod, f.severity, f.category) for f in idle] == [("infer-0", "low", "efficiency")]
    assert workload(section, "train-a").gpu_utilisation_percent == pytest.approx(90.0)


def test_budgets_used_remaining_forecast_and_findings(prom_dcgm: Backfilled) -> None:
    section, _ = scan(prom_dcgm, 3600.0)
    team_a = next(t for t in section.tenants if t.tenant == "team-a")
    b = team_a.budget
    assert b is not None
    elapsed = (b.as_of - b.period_start).total_seconds()
    length = (b.period_end - b.period_start).total_seconds()
    # the budget covers the month to date, whatever the window was
    month = [*prom_dcgm.named["exclusive"], *prom_dcgm.named["reset"]]
    want_kwh = expected(month, elapsed)
    assert close(b.used_kwh, want_kwh), (b.used_kwh, want_kwh)
    assert close(b.used_kg_co2e, want_kwh * 208.81 / 1000)  # europe-west4, Google 2024
    assert close(b.forecast_kwh, want_kwh * length / elapsed)
    assert b.remaining_kg_co2e == pytest.approx(5 - b.used_kg_co2e)
    rules = {(f.rule, f.severity) for f in section.findings if f.tenant == "team-a"}
    # (the month to date is a day or more except in a month's first day)
    want_rule = (
        ("carbon_budget_exceeded", "high")
        if b.used_kg_co2e > 5
        else ("carbon_budget_forecast_exceeded", "medium")
    )
    assert want_rule in rules
    team_b = next(t for t in section.tenants if t.tenant == "team-b")
    assert team_b.budget is not None and not [
        f for f in section.findings if f.tenant == "team-b" and f.category == "budget"
    ]
    assert next(t for t in section.tenants if t.tenant == "team-c").budget is None


def test_kepler_new_schema_pod_gpu_and_package_cpu(prom_kepler: Backfilled) -> None:
    for seconds in WINDOWS:
        section, _ = scan(prom_kepler, seconds)
        w = workload(section, "train-k")
        gpu = sum(f.kwh for f in w.figures if f.component == "gpu")
        cpu = sum(f.kwh for f in w.figures if f.component == "cpu")
        assert close(gpu, expected(prom_kepler.named["pod_gpu"], seconds, J))
        assert close(cpu, expected(prom_kepler.named["pod_cpu"], seconds, J))  # zone="package" only
        node = expected(prom_kepler.named["node_gpu"], seconds, J)
        assert close(section.unallocated.kwh, node - gpu)
        assert section.source.schema_detected == ("kepler >= 0.11.4 (kepler_pod_gpu_joules_total)",)


def test_kepler_pre_010_schema(prom_legacy: Backfilled) -> None:
    for seconds in WINDOWS:
        section, _ = scan(prom_legacy, seconds)
        w = workload(section, "old-k")
        assert w.namespace == "team-b" and w.tenant == "team-b"
        gpu = sum(f.kwh for f in w.figures if f.component == "gpu")
        cpu = sum(f.kwh for f in w.figures if f.component == "cpu")
        assert close(gpu, expected(prom_legacy.named["gpu"], seconds, J))  # dynamic + idle
        assert close(cpu, expected(prom_legacy.named["cpu"], seconds, J))
        assert section.source.schema_detected[0].startswith("kepler < 0.10")
        assert "not measured" in section.unallocated.source


@pytest.mark.parametrize("seconds", [10.0, 3600.0, DAY, 30 * DAY])
def test_power_gauge_fallback_with_old_namespace_labels(prom_power: Backfilled, seconds: float) -> None:
    section, _ = scan(prom_power, seconds)
    shared = [workload(section, f"old-{i}") for i in range(2)]
    device = 350 * seconds / J
    assert close(sum(w.kwh for w in shared), device), (sum(w.kwh for w in shared), device)
    assert all(w.kwh_by_method.keys() == {"apportioned"} and w.namespace == "team-c" for w in shared)
    solo = workload(section, "solo")
    assert close(solo.kwh, 72 * seconds / J) and solo.kwh_by_method.keys() == {"measured"}
    assert "--use-old-namespace" in section.source.schema_detected[0]
    assert "DCGM_FI_DEV_POWER_USAGE" in section.source.schema_detected[0]


@pytest.mark.parametrize("seconds", [20 * DAY, 30 * DAY])
def test_sharers_changing_in_the_window_split_per_step(prom_dcgm: Backfilled, seconds: float) -> None:
    section, _ = scan(prom_dcgm, seconds)
    alone = seconds - 15 * DAY  # join-1 held the GPU alone before join-2 came 15 days ago
    one, two = workload(section, "join-1"), workload(section, "join-2")
    assert close(one.kwh, 400 * (alone + 15 * DAY / 2) / J), one.kwh
    assert close(two.kwh, 400 * (15 * DAY / 2) / J), two.kwh
    device = expected(prom_dcgm.named["joined"][:1], seconds)
    assert close(one.kwh + two.kwh, device)
    assert one.kwh_by_method.keys() == two.kwh_by_method.keys() == {"apportioned"}
