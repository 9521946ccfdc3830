# ruff: noqa: PLC0415 - imports after argument parsing keep --help fast
"""Queries per energy scan and their time at N pods, against a real Prometheus, as ratios.

A synthetic dcgm-exporter history (N pods in T tenants' namespaces, one GPU each; every tenth
GPU time-sliced between two pods) is backfilled into Prometheus 2.42 with promtool. Then, in the
same run:

- guard's scan (``guard.energy.collect.scan_energy``, one hour window): the number of queries and
  their wall time;
- the baseline: one trivial query (``vector(1)``), the floor any query pays;
- the O(pods) way (one ``increase()`` query per pod, as a naive exporter client would), timed on
  a sample of 200 pods and extrapolated to N.

Figures are printed as ratios against the baselines (never asserted). Needs Debian's
``prometheus`` and ``promtool``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def history(pods: int, tenants: int, end: float) -> tuple[object, list[tuple[str, str]]]:
    from guard.testing.prometheus import OpenMetrics

    om = OpenMetrics()
    names = []
    times = [end - 3600 - 120 + 60 * i for i in range(63)]
    for i in range(pods):
        ns, pod = f"tenant-{i % tenants}", f"pod-{i}"
        names.append((ns, pod))
        gpu = i // 2 if i % 10 in (0, 1) else i  # pods 0/1, 10/11, ... share a GPU
        labels = {
            "gpu": "0",
            "UUID": f"GPU-{gpu}",
            "Hostname": f"node-{gpu // 8}",
            "modelName": "NVIDIA H100",
            "pod": pod,
            "namespace": ns,
            "container": "main",
        }
        om.series(
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            labels,
            [(t, 700.0 * (t - times[0]) * 1000) for t in times],
        )
    return om, names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from guard.config import parse_config
    from guard.energy.collect import scan_energy
    from guard.energy.prometheus import PrometheusClient
    from guard.energy.settings import PrometheusSettings
    from guard.energy.sources.base import Window
    from guard.testing.prometheus import PrometheusServer, available, backfill

    if not available():
        print("needs Debian's prometheus and promtool", file=sys.stderr)
        return 2
    end = float(int(time.time() // 3600) * 3600 - 3600)
    window = Window(datetime.fromtimestamp(end - 3600, UTC), datetime.fromtimestamp(end, UTC))
    config = parse_config(
        {
            "tenants": [
                {"name": f"tenant-{t}", "namespaces": [f"tenant-{t}"], "carbon": {"budget_kg_co2e": 1000}}
                for t in range(args.tenants)
            ]
        }
    )
    print(f"energy scan, 1 h window, {args.tenants} tenants (Prometheus 2.42, 127.0.0.1)")
    for pods in args.pods:
        with tempfile.TemporaryDirectory() as tmp:
            om, names = history(pods, args.tenants, end)
            server = PrometheusServer(Path(tmp))
            backfill(om, server.storage)  # type: ignore[arg-type]
            with server:
                settings = PrometheusSettings(url=server.url, timeout_seconds=600)
                with PrometheusClient(settings) as client:
                    at = window.until
                    client.query("vector(1)", at)  # warm
                    base = []
                    for _ in range(20):
                        t0 = time.perf_counter()
                        client.query("vector(1)", at)
                        base.append(time.perf_counter() - t0)
                    floor = statistics.median(base)
                    scans, queries = [], 0
                    for _ in range(args.repeat):
                        before = client.queries
                        t0 = time.perf_counter()
                        section = scan_energy(config, client, window)
                        scans.append(time.perf_counter() - t0)
                        queries = client.queries - before
                    sample = names[:: max(1, len(names) // 200)][:200]
                    t0 = time.perf_counter()
                    for ns, pod in sample:
                        client.query(
                            f'sum(increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{namespace="{ns}",'
                            f'pod="{pod}"}}[3600s]))',
                            at,
                        )
                    naive = (time.perf_counter() - t0) / len(sample) * pods
            best = min(scans)
            print(
                f"  {pods:6d} pods: guard {queries} queries in {best * 1000:.0f} ms "
                f"({len(section.workloads)} workloads, {section.total_kwh:.1f} kWh) = "
                f"{best / floor:.0f} x one trivial query ({floor * 1000:.2f} ms); "
                f"per-pod queries ({pods}) would take {naive:.1f} s = {naive / best:.1f} x guard's scan"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
