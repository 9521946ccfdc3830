"""The energy scan: sources -> rows -> workloads and tenants -> carbon -> budgets and findings.

``scan_energy`` is the library entry: it takes the config, a Prometheus client (or none, for the
estimate alone), the window and the pods the cluster scan saw (for estimates and reserved GPUs),
and returns the typed ``EnergySection``. Queries are a fixed handful per scan (detection, energy
per source, the shared-device split when a device was shared, utilisation), whatever the number of
pods: Prometheus aggregates, guard does not ask pod by pod.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from guard.config import GuardConfig, Tenant
from guard.energy.budgets import budget_findings, budget_for, period_bounds
from guard.energy.carbon import IntensityTable, embodied_share
from guard.energy.models import (
    Budget,
    Carbon,
    EnergyFigure,
    EnergySection,
    Finding,
    SourceInfo,
    TenantEnergy,
    Unallocated,
    WorkloadEnergy,
)
from guard.energy.prometheus import PrometheusClient
from guard.energy.sources.base import EnergySource, Row, Window, label, pod_of
from guard.energy.sources.dcgm import DcgmSource
from guard.energy.sources.detect import detect
from guard.energy.sources.estimate import EstimateSource, PodRecord

UTIL_PROF = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
UTIL_DEV = "DCGM_FI_DEV_GPU_UTIL"


@dataclass(frozen=True)
class ScanInputs:
    """What the cluster side gives the energy scan: pods (for estimates and reserved GPUs) and
    each node's region (``topology.kubernetes.io/region``)."""

    pods: Sequence[PodRecord] = ()
    node_regions: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Measured:
    rows: list[Row]
    schemas: list[str]
    findings: list[Finding]


def _measure(
    config: GuardConfig, client: PrometheusClient | None, window: Window, inputs: ScanInputs
) -> _Measured:
    rows: list[Row] = []
    schemas: list[str] = []
    findings: list[Finding] = []
    if client is not None:
        detected = detect(
            client,
            window,
            resolution_seconds=config.energy.resolution_seconds,
            mig_slices_per_gpu=config.energy.mig_slices_per_gpu,
        )
        if not detected.sources:
            findings.append(
                Finding(
                    rule="energy_metrics_missing",
                    severity="medium",
                    category="data",
                    message=(
                        f"Prometheus {client.url} has none of the energy metrics guard reads in the window "
                        f"(dcgm-exporter, Kepler >= 0.11.4 or < 0.10; query: {detected.query}); "
                        "energy is estimated"
                    ),
                )
            )
        for source in detected.sources:
            rows.extend(source.rows(window))
            schemas.append(_schema_name(source))
            if isinstance(source, DcgmSource) and source.renamed_series:
                findings.append(_renamed_labels_finding(client, source))
    else:
        findings.append(
            Finding(
                rule="energy_not_measured",
                severity="medium",
                category="data",
                message=(
                    "no Prometheus server given: energy is estimated for the "
                    f"{sum(p.gpus > 0 for p in inputs.pods)} pods "
                    "with GPUs the scan saw (reserved GPUs x board power x time), nothing is measured"
                ),
            )
        )
    measured_gpu = {(r.namespace, r.pod) for r in rows if r.component == "gpu" and r.pod}
    estimate = EstimateSource(inputs.pods, config.cluster, skip=measured_gpu)
    estimated = estimate.rows(window)
    if estimated:
        schemas.append(estimate.schema)
    rows.extend(estimated)
    return _Measured(rows, schemas, findings)


def _renamed_labels_finding(client: PrometheusClient, source: DcgmSource) -> Finding:
    """dcgm-exporter's pod labels reached Prometheus as ``exported_*``: the scrape gave the target's
    own ``namespace`` / ``pod`` (the exporter's) precedence, so the energy of every GPU is charged to
    the exporter's pod and the pods that used the GPUs are estimated. Said, never guessed: a
    label spelled ``exported_pod`` is not read as the pod."""
    return Finding(
        rule="energy_pod_labels_renamed",
        severity="medium",
        category="data",
        message=(
            f"Prometheus {client.url}: {source.renamed_series} dcgm-exporter series carry exported_pod / "
            "exported_namespace, the exporter's pod labels renamed because the scrape does not honor "
            "them; pod / namespace there name the exporter itself, so the GPUs' energy is charged to its "
            "pod, not to the pods that used the GPUs (those are estimated). Scrape dcgm-exporter with "
            "honor_labels: true (honorLabels: true in a ServiceMonitor, as the GPU Operator's does)"
        ),
    )


def _schema_name(source: EnergySource) -> str:
    if isinstance(source, DcgmSource) and source.label_spelling:
        return f"{source.schema}, pod labels {source.label_spelling}"
    return source.schema


def _utilisation(client: PrometheusClient, window: Window) -> tuple[dict[tuple[str, str], float], str | None]:
    for metric, scale in ((UTIL_PROF, 100.0), (UTIL_DEV, 1.0)):
        q = (
            "avg by (namespace, pod, pod_namespace, pod_name) "
            f"(avg_over_time({metric}[{window.range()}])) * {scale:g}"
        )
        samples = client.query(q, window.until)
        if samples:
            out = {}
            for s in samples:
                ns, pod = pod_of(s)
                if pod:
                    out[(ns, pod)] = s.value
            return out, q
    return {}, None


class _CarbonSum:
    def __init__(self, table: IntensityTable, config: GuardConfig, regions: Mapping[str, str]) -> None:
        self.table, self.config, self.regions = table, config, regions

    def region(self, node: str | None) -> str | None:
        return self.regions.get(node or "") or self.config.energy.region

    def of(self, figures: Sequence[EnergyFigure], embodied: float | None) -> Carbon:
        pue = self.config.energy.pue
        kg = 0.0
        kwh = 0.0
        regions: list[str] = []
        datasets: list[str] = []
        years: set[int] = set()
        fallback = False
        for f in figures:
            region = self.region(f.node)
            row, fb = self.table.lookup(region)
            kg += f.kwh * pue * row.g_per_kwh / 1000
            kwh += f.kwh
            fallback = fallback or fb
            if (region or "(none)") not in regions:
                regions.append(region or "(none)")
            if row.dataset not in datasets:
                datasets.append(row.dataset)
            years.add(row.year)
        if not figures:
            row, fallback = self.table.lookup(self.config.energy.region)
            datasets, years = [row.dataset], {row.year}
            regions = [self.config.energy.region or "(none)"]
        intensity = (
            kg * 1000 / (kwh * pue) if kwh > 0 else self.table.lookup(self.config.energy.region)[0].g_per_kwh
        )
        return Carbon(
            operational_kg_co2e=kg,
            embodied_kg_co2e=embodied,
            intensity_g_per_kwh=intensity,
            region=", ".join(regions),
            dataset="; ".join(datasets),
            year=next(iter(years)) if len(years) == 1 else None,
            fallback=fallback,
            pue=pue,
        )


def _figure(r: Row) -> EnergyFigure:
    return EnergyFigure(
        kwh=r.kwh,
        method=r.method,
        component=r.component,
        source=r.source,
        device=r.device,
        node=r.node,
        note=r.note,
    )


def _by_method(figures: Sequence[EnergyFigure]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for f in figures:
        out[f.method] += f.kwh
    return dict(out)


def _embodied(config: GuardConfig, pod: PodRecord | None, window: Window) -> float | None:
    if pod is None or pod.gpus <= 0 or pod.start is None:
        return None
    hours = max(
        0.0,
        (min(pod.end or window.until, window.until) - max(pod.start, window.since)).total_seconds() / 3600,
    )
    product = pod.products[0] if len(pod.products) == 1 else None
    return embodied_share(config.cluster, product, pod.gpus * hours)


def _tenant_totals(
    config: GuardConfig, workloads: Sequence[WorkloadEnergy]
) -> dict[str, tuple[float, float]]:
    totals: dict[str, tuple[float, float]] = {}
    for w in workloads:
        if w.tenant is not None:
            kwh, kg = totals.get(w.tenant, (0.0, 0.0))
            totals[w.tenant] = (kwh + w.kwh, kg + w.carbon.operational_kg_co2e)
    return totals


MAX_NOT_FINITE_FINDINGS = 50


def _not_finite_findings(
    client: PrometheusClient, tenant_of: Callable[[str], Tenant | None]
) -> list[Finding]:
    """A data finding per pod (or device) Prometheus answered NaN or Inf for: the figure is
    unknown, so its tenant's energy and budget lack it, and the report says so."""
    where: dict[tuple[str, str, str], tuple[str, str]] = {}
    for query, s in client.not_finite:
        ns, pod = pod_of(s)
        device = label(s, "UUID", "node_name", "Hostname", "hostname")
        value = "NaN" if math.isnan(s.value) else f"{s.value:+}".replace("inf", "Inf")
        where.setdefault((ns, pod, device), (value, query))
    out = []
    for (ns, pod, device), (value, query) in sorted(where.items())[:MAX_NOT_FINITE_FINDINGS]:
        tenant = tenant_of(ns) if ns else None
        subject = f"pod {ns}/{pod}" if pod else f"device {device or '?'} (no pod)"
        out.append(
            Finding(
                rule="energy_sample_not_finite",
                severity="medium",
                category="data",
                namespace=ns or None,
                pod=pod or None,
                tenant=tenant.name if tenant else None,
                message=f"Prometheus {client.url} answered {value} for {subject}: no figure, so it is "
                "left out of the totals, budgets and utilisation (they lack it; it is not a measured zero); "
                f"query: {query}",
            )
        )
    if len(where) > MAX_NOT_FINITE_FINDINGS:
        out.append(
            Finding(
                rule="energy_sample_not_finite",
                severity="medium",
                category="data",
                message=f"{len(where) - MAX_NOT_FINITE_FINDINGS} more series answered NaN or Inf",
            )
        )
    return out


def scan_energy(
    config: GuardConfig,
    client: PrometheusClient | None,
    window: Window,
    inputs: ScanInputs | None = None,
    *,
    budgets: bool = True,
) -> EnergySection:
    """Energy, carbon, budgets and findings over ``window`` (see the module docstring). A tenant's
    budget covers its period up to the window's end: when the window starts elsewhere, the
    period-to-date is measured once more per distinct period start (``budgets=False`` there)."""
    inputs = inputs or ScanInputs()
    table = IntensityTable.load(config.energy)
    carbon = _CarbonSum(table, config, inputs.node_regions)
    if client is not None:
        client.start_deadline()
    measured = _measure(config, client, window, inputs)
    findings = list(measured.findings)
    pods = {(p.namespace, p.pod): p for p in inputs.pods}

    # 1. workloads and the unallocated remainder
    grouped: dict[tuple[str, str], list[EnergyFigure]] = defaultdict(list)
    unallocated: list[Row] = []
    for r in measured.rows:
        if r.pod:
            grouped[(r.namespace, r.pod)].append(_figure(r))
        else:
            unallocated.append(r)
    tenant_of = functools.cache(config.tenant_for)  # one lookup per namespace, not per pod
    util, util_q = _utilisation(client, window) if client is not None and budgets else ({}, None)
    workloads = []
    for (ns, pod), figures in sorted(grouped.items()):
        tenant = tenant_of(ns)
        workloads.append(
            WorkloadEnergy(
                namespace=ns,
                pod=pod,
                tenant=tenant.name if tenant else None,
                kwh=sum(f.kwh for f in figures),
                kwh_by_method=_by_method(figures),
                figures=tuple(figures),
                carbon=carbon.of(figures, _embodied(config, pods.get((ns, pod)), window)),
                gpu_utilisation_percent=util.get((ns, pod)),
            )
        )

    # 2. idle GPUs (reserved, utilisation under the threshold)
    threshold = config.energy.idle_gpu_threshold_percent
    for (ns, pod), percent in sorted(util.items()):
        if percent < threshold:
            findings.append(
                Finding(
                    rule="gpu_idle",
                    severity="low",
                    category="efficiency",
                    namespace=ns,
                    pod=pod,
                    tenant=(t.name if (t := tenant_of(ns)) else None),
                    message=f"pod {ns}/{pod} holds GPUs at {percent:.1f}% mean utilisation over the "
                    f"window (under {threshold:g}%; query: {util_q})",
                )
            )

    # 3. tenants and budgets (the budget covers the tenant's period up to the window's end)
    totals = _tenant_totals(config, workloads)
    by_tenant: dict[str, list[WorkloadEnergy]] = defaultdict(list)
    for w in workloads:
        if w.tenant is not None:
            by_tenant[w.tenant].append(w)
    period_totals = {window.since: totals}
    tenants = []
    for t in config.tenants:
        kwh_w, kg_w = totals.get(t.name, (0.0, 0.0))
        ts = by_tenant.get(t.name, [])
        embodied_values = [w.carbon.embodied_kg_co2e for w in ts if w.carbon.embodied_kg_co2e is not None]
        budget: Budget | None = None
        if t.carbon is not None and budgets:
            start, _, _ = period_bounds(t.carbon.period, window.until)
            if start not in period_totals:
                sub = scan_energy(config, client, Window(start, window.until), inputs, budgets=False)
                period_totals[start] = {x.tenant: (x.kwh, x.operational_kg_co2e) for x in sub.tenants}
            p_kwh, p_kg = period_totals[start].get(t.name, (0.0, 0.0))
            budget = budget_for(t.carbon, p_kg, p_kwh, window.until)
            findings.extend(budget_findings(t.name, budget))
        tenants.append(
            TenantEnergy(
                tenant=t.name,
                namespaces=t.namespaces,
                kwh=kwh_w,
                kwh_by_method=_by_method([f for w in ts for f in w.figures]),
                operational_kg_co2e=kg_w,
                embodied_kg_co2e=sum(embodied_values) if embodied_values else None,
                budget=budget,
            )
        )

    # 4. data-quality findings
    if any(w.carbon.fallback for w in workloads):
        findings.append(
            Finding(
                rule="grid_intensity_fallback",
                severity="low",
                category="data",
                message=(
                    "some energy has no known region (node label topology.kubernetes.io/region "
                    "or energy.region) in the "
                    "intensity table: counted at the world average 475 gCO2e/kWh (IEA 2019)"
                ),
            )
        )
    if budgets and client is not None:
        findings.extend(_not_finite_findings(client, tenant_of))
    u_rows = unallocated
    source_text = "; ".join(sorted({r.source for r in u_rows})) or "no energy without a pod was measured"
    if any(isinstance(s, str) and s.startswith("kepler < 0.10") for s in measured.schemas):
        source_text += (
            " (Kepler < 0.10 has no node GPU total: unallocated GPU energy is not measured with it)"
        )
    return EnergySection(
        since=window.since,
        until=window.until,
        window_seconds=window.seconds,
        source=SourceInfo(
            kind="prometheus" if client is not None else "estimate",
            url=client.url if client is not None else None,
            schema_detected=tuple(measured.schemas),
            queries=client.queries if client is not None else 0,
        ),
        intensity_table=table.description,
        workloads=tuple(workloads),
        tenants=tuple(tenants),
        unallocated=Unallocated(
            kwh=sum(r.kwh for r in u_rows),
            source=source_text,
            devices=tuple(sorted({r.device or r.node or "?" for r in u_rows})),
        ),
        findings=tuple(findings),
        total_kwh=sum(w.kwh for w in workloads),
        total_operational_kg_co2e=sum(w.carbon.operational_kg_co2e for w in workloads),
    )
