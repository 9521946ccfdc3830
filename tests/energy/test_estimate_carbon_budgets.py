"""The estimate, the intensity table, PUE, embodied share, periods and budget findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guard.config import CarbonBudget, parse_config
from guard.energy.budgets import budget_findings, budget_for, parse_period, period_bounds
from guard.energy.carbon import IntensityTable
from guard.energy.collect import ScanInputs, scan_energy
from guard.energy.settings import EnergySettings
from guard.energy.sources.base import Window
from guard.energy.sources.estimate import pod_records
from guard.errors import ConfigError, UsageError

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def pod(
    name: str,
    gpus: int,
    start: str,
    *,
    node: str = "g1",
    finished: str | None = None,
    selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running", "startTime": start}
    if finished:
        status = {
            "phase": "Succeeded",
            "startTime": start,
            "containerStatuses": [{"name": "main", "state": {"terminated": {"finishedAt": finished}}}],
        }
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [
            {"name": "main", "image": "r.example/m:1", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
        ],
    }
    if selector:
        spec["nodeSelector"] = selector
    return {"metadata": {"name": name, "namespace": "team-a"}, "spec": spec, "status": status}


def test_estimate_reserved_gpus_board_power_time() -> None:
    cfg = parse_config(
        {
            "tenants": [{"name": "team-a", "namespaces": ["team-a"]}],
            "cluster": {
                "gpuProducts": {
                    "NVIDIA-H100-80GB-HBM3": {
                        "memoryGib": 80,
                        "boardPowerW": 700,
                        "embodiedKgCO2e": 1000,
                    }
                }
            },
            "energy": {"region": "us-central1"},
        }
    )
    pods = {
        "items": [
            pod("a", 2, "2026-11-01T00:00:00Z"),  # node g1: H100 (node label)
            pod("b", 1, "2026-11-01T10:00:00Z", finished="2026-11-01T12:00:00Z", node="x"),  # unknown product
            pod("cpu-only", 0, "2026-11-01T00:00:00Z"),
        ]
    }
    nodes = {
        "items": [{"metadata": {"name": "g1", "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}}}]
    }
    records = pod_records(pods, cfg.cluster, nodes)
    section = scan_energy(cfg, None, Window(T0, T0 + timedelta(hours=10)), ScanInputs(pods=records))
    a = next(w for w in section.workloads if w.pod == "a")
    assert a.kwh == pytest.approx(2 * 700 * 10 / 1000)
    assert a.kwh_by_method == {"estimated": pytest.approx(14.0)}
    assert "boardPowerW" in a.figures[0].source and "2 GPUs x 700 W" in a.figures[0].source
    assert a.carbon.operational_kg_co2e == pytest.approx(14.0 * 412.72 / 1000)
    assert a.carbon.embodied_kg_co2e == pytest.approx(1000 * 20 / (4 * 24 * 365.25))  # SCI M, reported apart
    assert not any(w.pod == "b" for w in section.workloads)  # ran 10:00..12:00, the window ends at 10:00
    assert {f.rule for f in section.findings} == {"energy_not_measured"}
    section = scan_energy(cfg, None, Window(T0, T0 + timedelta(hours=24)), ScanInputs(pods=records))
    b = next(w for w in section.workloads if w.pod == "b")
    assert b.kwh == pytest.approx(700 * 2 / 1000)  # the largest board power known: an upper bound
    assert "upper bound" in b.figures[0].source
    assert not any(w.pod == "cpu-only" for w in section.workloads)


def test_intensity_table_shipped_dated_and_overridable(tmp_path: Path) -> None:
    table = IntensityTable.load(EnergySettings())
    row, fallback = table.lookup("europe-north1")
    assert (row.g_per_kwh, row.year, fallback) == (39.32, 2024, False)
    assert "region-carbon-info" in row.dataset
    assert "dated 2026-12-02" in table.description
    row, fallback = table.lookup("mars-1")
    assert fallback and row.g_per_kwh == 475 and row.year == 2019
    extra = tmp_path / "mine.csv"
    extra.write_text("region,g_per_kwh,dataset,year\non-prem-1,300,utility bill 2025,2025\n")
    settings = EnergySettings.model_validate(
        {
            "intensityTable": str(extra),
            "gridIntensity": {"europe-north1": {"gPerKwh": 50, "dataset": "Ember 2025", "year": 2025}},
        }
    )
    table = IntensityTable.load(settings)
    assert table.lookup("on-prem-1")[0].g_per_kwh == 300
    assert table.lookup("europe-north1")[0].dataset == "Ember 2025"
    bad = tmp_path / "bad.csv"
    bad.write_text("region,g\nx,1\n")
    with pytest.raises(ConfigError, match="expected the CSV header region,g_per_kwh,dataset,year"):
        IntensityTable.load(EnergySettings.model_validate({"intensityTable": str(bad)}))


def test_pue_and_fallback_flag() -> None:
    cfg = parse_config({"energy": {"pue": 1.2}, "tenants": [{"name": "t", "namespaces": ["team-a"]}]})
    records = pod_records(
        {"items": [pod("a", 1, "2026-11-01T00:00:00Z", selector={"nvidia.com/gpu.product": "NVIDIA-L4"})]},
        cfg.cluster,
    )
    section = scan_energy(cfg, None, Window(T0, T0 + timedelta(hours=100)), ScanInputs(pods=records))
    w = section.workloads[0]
    assert w.kwh == pytest.approx(7.2)
    assert w.carbon.operational_kg_co2e == pytest.approx(7.2 * 1.2 * 475 / 1000)
    assert w.carbon.fallback and w.carbon.pue == 1.2
    assert "grid_intensity_fallback" in {f.rule for f in section.findings}


def test_periods() -> None:
    assert parse_period("2026-11")[:2] == (T0, datetime(2026, 12, 1, tzinfo=UTC))
    assert parse_period("2026-12")[1] == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_period("2026-Q4")[:3] == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        "2026-Q4",
    )
    assert parse_period("2026")[2] == "2026"
    # a scan ending on a boundary measured the period before it
    assert period_bounds("month", datetime(2026, 12, 1, tzinfo=UTC))[2] == "2026-11"
    for bad in ("2026-13", "11-2026", "2026-Q5", ""):
        with pytest.raises(UsageError, match="expected YYYY-MM"):
            parse_period(bad)


@pytest.mark.parametrize(
    ("used", "rule", "severity"),
    [
        (120.0, "carbon_budget_exceeded", "high"),
        (60.0, "carbon_budget_forecast_exceeded", "medium"),  # half the month gone, 60 used: 120 forecast
        (40.0, None, None),
    ],
)
def test_budget_findings(used: float, rule: str | None, severity: str | None) -> None:
    half = T0 + timedelta(days=15)
    b = budget_for(CarbonBudget(budget_kg_co2e=100), used, used * 4, half)
    assert b.forecast_kg_co2e == pytest.approx(used * 2)
    assert b.remaining_kg_co2e == pytest.approx(100 - used)
    found = [(f.rule, f.severity) for f in budget_findings("t", b)]
    assert found == ([(rule, severity)] if rule else [])


def test_budget_80_percent_low_and_kwh_budget() -> None:
    end = datetime(2026, 11, 30, 23, tzinfo=UTC)
    b = budget_for(CarbonBudget(budget_kg_co2e=100, budget_kwh=1000), 85, 1500, end)
    found = {(f.rule, f.severity) for f in budget_findings("t", b)}
    assert found == {("carbon_budget_low", "low"), ("carbon_budget_exceeded_kwh", "high")}


@pytest.mark.parametrize(
    ("pods", "message"),
    [
        ("[1, 2]", "expected a PodList"),
        (
            '{"items": [{"metadata": {"name": "p"}, "spec": "x", "status": {}}]}',
            "expected metadata, spec and status",
        ),
        (
            '{"items": [{"metadata": {"name": "p"}, "spec": {"containers": []}, "status": {}}]}',
            "at least one container",
        ),
        (
            '{"items": [{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]},'
            ' "status": {"startTime": "yesterday"}}]}',
            "expected an RFC 3339 time",
        ),
        (
            '{"items": [{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]},'
            ' "status": {"phase": "Failed", "containerStatuses": 7}}]}',
            None,
        ),
        ("{" * 100000, "not JSON"),
    ],
)
def test_bad_pods_files_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pods: str, message: str | None
) -> None:
    from guard.cli import run

    path = tmp_path / "pods.json"
    path.write_text(pods)
    code = run(["energy", "--pods", str(path), "--period", "2026-11"])
    err = capsys.readouterr().err
    if message is None:
        assert code == 0, err
    else:
        assert code == 2 and message in err, err
        assert "Traceback" not in err


def test_bad_nodes_file_and_window_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from guard.cli import run

    nodes = tmp_path / "nodes.json"
    nodes.write_text('{"kind": "NodeList"}')
    pods = tmp_path / "pods.json"
    pods.write_text('{"items": []}')
    assert run(["energy", "--pods", str(pods), "--nodes", str(nodes)]) == 2
    assert "expected a NodeList" in capsys.readouterr().err
    assert run(["energy", "--period", "2026-11", "--since", "2026-11-01T00:00:00Z"]) == 2
    assert "not both" in capsys.readouterr().err
    assert run(["energy", "--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z"]) == 2
    assert "is not before" in capsys.readouterr().err
    assert run(["energy", "--period", "2999-01"]) == 2
    assert "has not started" in capsys.readouterr().err
    assert run(["energy", "--prometheus", "not a url"]) == 2
    assert "--prometheus" in capsys.readouterr().err
