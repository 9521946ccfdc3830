"""Live scrapes (1 s) of a test exporter, the CLI, Prometheus down, auth options, published usage."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from guard.cli import run
from guard.config import parse_config
from guard.energy.collect import scan_energy
from guard.energy.prometheus import PrometheusClient, PrometheusError
from guard.energy.settings import PrometheusSettings
from guard.energy.sources.base import Window
from guard.energy.usage import UsageStore, parse_usage
from guard.testing.links import plant_link
from guard.testing.prometheus import MetricsExporter, PrometheusServer, free_port, line

from .conftest import dcgm_labels


class GrowingCounters:
    """dcgm-exporter lines whose energy counters grow at fixed power with wall-clock time; the
    exporter's own counter values are kept per scrape to check guard against."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.watts = {"GPU-l1": 700.0, "GPU-l2": 72.0}
        self.lock = threading.Lock()

    def value_mj(self, uuid: str, t: float) -> float:
        return 1e9 + self.watts[uuid] * (t - self.t0) * 1000

    def body(self) -> str:
        t = time.time()
        lines = [
            line(
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
                dcgm_labels(0, "GPU-l1", "live", "big", "team-a"),
                self.value_mj("GPU-l1", t),
            ),
            line(
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
                dcgm_labels(1, "GPU-l2", "live", "small", "team-a"),
                self.value_mj("GPU-l2", t),
            ),
            line("DCGM_FI_DEV_POWER_USAGE", dcgm_labels(0, "GPU-l1", "live", "big", "team-a"), 700.0),
        ]
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> object:
    counters = GrowingCounters()
    with (
        MetricsExporter(counters.body) as exporter,
        PrometheusServer(tmp_path_factory.mktemp("prom-live"), targets=[exporter.target]) as prom,
    ):
        prom.wait_for_samples("count_over_time(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[20s])", 12)
        yield prom


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "guard.yaml"
    path.write_text(
        "tenants:\n  - name: team-a\n    namespaces: [team-a]\n    carbon: {budget_kg_co2e: 1000}\n"
        "energy:\n  region: europe-north1\n  resolution_seconds: 2\n"
    )
    return path


def test_live_scrapes_10s_window_equal_the_counters(
    live: PrometheusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    until = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    since = until - timedelta(seconds=10)
    out = tmp_path / "energy.json"
    code = run(
        [
            "energy",
            "--prometheus",
            live.url,
            "--since",
            since.isoformat(),
            "--until",
            until.isoformat(),
            "--config",
            str(_config(tmp_path)),
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr()
    doc = json.loads(out.read_text())
    by_pod = {w["pod"]: w for w in doc["workloads"]}
    assert by_pod["big"]["kwh"] == pytest.approx(700 * 10 / 3.6e6, rel=0.01)
    assert by_pod["small"]["kwh"] == pytest.approx(72 * 10 / 3.6e6, rel=0.01)
    assert by_pod["big"]["figures"][0]["method"] == "measured"
    assert doc["source"]["url"] == live.url
    assert "tenant team-a" in capsys.readouterr().out


@pytest.mark.parametrize("honor_labels", [False, True])
def test_a_scrape_that_renames_the_exporters_pod_labels_is_a_finding(
    tmp_path: Path, honor_labels: bool
) -> None:
    """Prometheus 2.42 scraping dcgm-exporter lines from a target labelled with the exporter's own
    namespace and pod (as a ServiceMonitor labels it): without honor_labels the exporter's
    `pod` / `namespace` become `exported_pod` / `exported_namespace` and every GPU's energy lands on
    the exporter's pod; guard says so (a data finding) instead of charging it silently."""
    counters = GrowingCounters()
    labels = {"namespace": "gpu-operator", "pod": "dcgm-exporter-x1"}
    with (
        MetricsExporter(counters.body) as exporter,
        PrometheusServer(
            tmp_path / "prom",
            targets=[exporter.target],
            target_labels=labels,
            honor_labels=honor_labels,
        ) as prom,
    ):
        prom.wait_for_samples("count_over_time(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[20s])", 6)
        until = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        client = PrometheusClient(PrometheusSettings(url=prom.url))
        cfg = parse_config({"tenants": [{"name": "team-a", "namespaces": ["team-a"]}]})
        section = scan_energy(cfg, client, Window(until - timedelta(seconds=4), until))
    pods = {(w.namespace, w.pod) for w in section.workloads if w.kwh > 0}
    renamed = [f for f in section.findings if f.rule == "energy_pod_labels_renamed"]
    if honor_labels:
        assert pods == {("team-a", "big"), ("team-a", "small")}
        assert renamed == []
    else:
        assert pods == {("gpu-operator", "dcgm-exporter-x1")}  # what the scrape made of it
        assert len(renamed) == 1, section.findings
        assert "honor_labels: true" in renamed[0].message and prom.url in renamed[0].message


def test_prometheus_down_is_exit_3_with_the_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = run(
        [
            "energy",
            "--prometheus",
            url,
            "--period",
            "2026-11",
            "--config",
            str(_config(tmp_path)),
            "--publish-usage",
            str(tmp_path / "usage.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 3
    assert url in err and "unreachable" in err
    assert not (tmp_path / "usage.json").exists()  # never a silent zero published


def test_prometheus_5xx_and_non_api_answers_are_infrastructure_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if b"five" in request.content:
            return httpx.Response(503, text="upstream down")
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": []}})

    client = PrometheusClient(
        PrometheusSettings(url="http://prom.example:9090"),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(
        PrometheusError, match=r"prom.example:9090 answered HTTP 503 with a body that is not JSON"
    ):
        client.query("five", datetime.now(UTC))
    with pytest.raises(PrometheusError, match="expected a vector result"):
        client.query("up", datetime.now(UTC))


def test_bearer_and_basic_auth_and_tls_defaults(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [
                        {"metric": {"pod": "p"}, "value": [0, "1.5"]},
                        {"metric": {}, "value": [0, "NaN"]},
                    ],
                },
            },
        )

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    password = tmp_path / "password"
    password.write_text("pw")
    bearer = PrometheusClient(
        PrometheusSettings.model_validate({"url": "https://p.example", "bearerTokenFile": token}),
        transport=httpx.MockTransport(handler),
    )
    samples = bearer.query("up", datetime.now(UTC))
    assert [s.value for s in samples] == [1.5]  # NaN dropped
    assert seen[-1].headers["Authorization"] == "Bearer s3cret"
    basic = PrometheusClient(
        PrometheusSettings.model_validate(
            {"url": "https://p.example", "username": "u", "passwordFile": password}
        ),
        transport=httpx.MockTransport(handler),
    )
    basic.query("up", datetime.now(UTC))
    assert seen[-1].headers["Authorization"].startswith("Basic ")
    with pytest.raises(ValueError, match="basic auth needs both"):
        PrometheusSettings.model_validate({"url": "https://p.example", "username": "u"})
    assert PrometheusSettings.model_validate({"url": "https://p.example"}).insecure_skip_tls_verify is False


def test_the_total_deadline_covers_all_queries() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.3)
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": []}})

    client = PrometheusClient(
        PrometheusSettings(url="http://p.example", timeout_seconds=0.5),
        transport=httpx.MockTransport(slow),
    )
    client.start_deadline()
    client.query("a", datetime.now(UTC))
    client.query("b", datetime.now(UTC))
    with pytest.raises(PrometheusError, match="deadline passed before the query c"):
        client.query("c", datetime.now(UTC))


def test_publish_usage_and_store_reloads_in_place(live: PrometheusServer, tmp_path: Path) -> None:
    usage = tmp_path / "usage.json"
    code = run(
        [
            "energy",
            "--prometheus",
            live.url,
            "--config",
            str(_config(tmp_path)),
            "--publish-usage",
            str(usage),
        ]
    )
    assert code == 0
    doc = parse_usage(usage.read_bytes(), str(usage))
    assert doc.source == live.url
    used = doc.tenants["team-a"].used_kg_co2e
    assert used > 0
    store = UsageStore(usage, max_age_seconds=3600)
    fields = store.carbon_fields("team-a", typed_used=999.0)
    assert (
        fields["usedSource"] == "measured" and fields["usedKgCO2e"] == used and fields["usageStale"] is False
    )
    assert store.carbon_fields("team-b", typed_used=7.0)["usedSource"] == "config"
    later = datetime.now(UTC) + timedelta(hours=2)
    assert store.carbon_fields("team-a", 0, now=later)["usageStale"] is True
    # rewritten in place: read again; broken: the last good document stays and the problem is said
    raw = json.loads(usage.read_text())
    raw["tenants"]["team-a"]["usedKgCO2e"] = 12.5
    usage.write_text(json.dumps(raw))
    assert store.carbon_fields("team-a", 0)["usedKgCO2e"] == 12.5
    usage.write_text("{not json")
    fields = store.carbon_fields("team-a", 0)
    assert fields["usedKgCO2e"] == 12.5 and "not UTF-8 JSON" in fields["usageProblem"]


def _pods_snapshot(path: Path) -> Path:
    started = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def pod(name: str, gpus: int) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}"},
            "spec": {
                "nodeName": "live",
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.example.com/team-a/m@sha256:" + "b" * 64,
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                    }
                ],
            },
            "status": {"phase": "Running", "startTime": started},
        }

    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [pod("big", 1), pod("small", 1), pod("unmeasured", 2)],
            }
        )
    )
    return path


def test_guard_scan_fills_energy_and_publishes_usage(
    live: PrometheusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, usage = tmp_path / "scan.json", tmp_path / "usage.json"
    code = run(
        [
            "scan",
            "--snapshot",
            str(_pods_snapshot(tmp_path / "pods.json")),
            "--config",
            str(_config(tmp_path)),
            "--prometheus",
            live.url,
            "--since",
            (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "--publish-usage",
            str(usage),
            "-o",
            str(out),
            "--fail-on",
            "critical",
        ]
    )
    assert code == 0, capsys.readouterr()
    energy = json.loads(out.read_text())["energy"]
    by_pod = {w["pod"]: w for w in energy["workloads"]}
    assert by_pod["big"]["kwhByMethod"].keys() == {"measured"}
    assert by_pod["big"]["workloadId"] == "v1/Pod/team-a/big"  # the scan's workload running the pod
    # a pod with GPUs and no series: estimated from the scan's pod (2 x 72 W x 1 h)
    assert by_pod["unmeasured"]["kwhByMethod"] == {"estimated": pytest.approx(2 * 72 / 1000, rel=0.01)}
    assert energy["source"]["url"] == live.url and energy["tenants"][0]["budget"]["period"]
    assert parse_usage(usage.read_bytes(), "usage").tenants["team-a"].used_kg_co2e > 0


def test_guard_scan_with_prometheus_down_is_partial_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "scan.json"
    code = run(
        [
            "scan",
            "--snapshot",
            str(_pods_snapshot(tmp_path / "pods.json")),
            "--config",
            str(_config(tmp_path)),
            "--prometheus",
            url,
            "--period",
            "2026-11",
            "-o",
            str(out),
            "--fail-on",
            "critical",
        ]
    )
    assert code == 3
    doc = json.loads(out.read_text())
    assert doc["energy"] is None and doc["scan"]["partial"] is True
    assert any(url in r and "unreachable" in r for r in doc["scan"]["partialReasons"])


def _dcgm_client(energy: list[dict[str, object]]) -> PrometheusClient:
    """A client of a Prometheus that has dcgm-exporter's energy counter and answers ``energy`` to
    the energy query (nothing to any other)."""

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        result: list[dict[str, object]] = []
        if query.startswith("count by (__name__)"):
            result = [{"metric": {"__name__": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"}, "value": [0, "1"]}]
        elif "increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" in query:
            result = energy
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    return PrometheusClient(
        PrometheusSettings(url="http://prom.example:9090"), transport=httpx.MockTransport(handler)
    )


def test_a_non_finite_energy_figure_is_a_data_finding_not_a_silent_zero() -> None:
    """A Prometheus answer of NaN or Inf for a pod's energy carries no figure, and the client
    drops it; the tenant's energy then read as zero and its budget as met, with nothing said.
    The scan now names each such series in a data finding against its tenant."""

    cfg = parse_config(
        {"tenants": [{"name": "team-a", "namespaces": ["team-a"], "carbon": {"budgetKgCO2e": 1}}]}
    )
    client = _dcgm_client(
        [
            {"metric": {"namespace": "team-a", "pod": "trainer", "UUID": "GPU-1"}, "value": [0, "NaN"]},
            {"metric": {"namespace": "team-b", "pod": "web", "UUID": "GPU-2"}, "value": [0, "0.5"]},
        ]
    )
    until = datetime(2026, 11, 20, tzinfo=UTC)
    section = scan_energy(cfg, client, Window(until - timedelta(days=1), until))
    found = [f for f in section.findings if f.rule == "energy_sample_not_finite"]
    assert [(f.severity, f.category, f.tenant, f.namespace, f.pod) for f in found] == [
        ("medium", "data", "team-a", "team-a", "trainer")
    ]
    assert "NaN" in found[0].message


def test_dcgm_pod_and_namespace_are_read_as_one_spelling() -> None:
    """dcgm-exporter names a series' pod ``pod``/``namespace`` (``pod_name``/``pod_namespace``
    with --use-old-namespace). The pod came from one spelling and the namespace preferred the
    other, so a series ``pod=trainer, namespace=team-a`` that also carried a ``pod_namespace``
    label (a relabelling, an exported pod label) was charged to that namespace's tenant."""

    cfg = parse_config(
        {
            "tenants": [
                {"name": "team-a", "namespaces": ["team-a"]},
                {"name": "team-b", "namespaces": ["team-b"]},
            ]
        }
    )
    labels = {"namespace": "team-a", "pod": "trainer", "pod_namespace": "team-b", "UUID": "GPU-1"}
    client = _dcgm_client([{"metric": labels, "value": [0, "2.0"]}])
    until = datetime(2026, 11, 20, tzinfo=UTC)
    section = scan_energy(cfg, client, Window(until - timedelta(days=1), until))
    assert {(w.namespace, w.pod, w.tenant) for w in section.workloads} == {("team-a", "trainer", "team-a")}
    assert {t.tenant: t.kwh for t in section.tenants} == {"team-a": 2.0, "team-b": 0.0}


def test_output_replaces_a_planted_symlink_never_writes_through_it(
    live: PrometheusServer, tmp_path: Path
) -> None:
    planted = plant_link(tmp_path, "energy.json")
    until = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    args = ["energy", "--prometheus", live.url, "--since", (until - timedelta(seconds=10)).isoformat()]
    args += ["--until", until.isoformat(), "--config", str(_config(tmp_path)), "-o", str(planted.path)]
    assert run(args) == 0
    planted.assert_replaced()
    assert json.loads(planted.path.read_text())["workloads"]
