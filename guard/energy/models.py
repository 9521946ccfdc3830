"""Typed results of an energy scan: every figure says how it was obtained and from where.

``EnergySection`` is the ``energy`` part of the scan result document (``guard.scan.result``);
``guard energy`` prints it as JSON. Values are frozen pydantic models, so they serialise to JSON
with camelCase names (as the rest of the scan result) and cannot be changed after they are built.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Method = Literal["measured", "apportioned", "estimated"]
Component = Literal["gpu", "cpu"]
Severity = Literal["high", "medium", "low"]


def wire_name(field: str) -> str:
    """camelCase as the scan result document (``kwhByMethod``), with CO2e spelled as in the policy
    input (``operationalKgCO2e``, not ``operationalKgCo2E``)."""
    return to_camel(field).replace("Co2E", "CO2e")


class _Frozen(BaseModel):
    """Frozen; camelCase on the wire (see ``wire_name``)."""

    model_config = ConfigDict(alias_generator=wire_name, populate_by_name=True, frozen=True, extra="forbid")


class EnergyFigure(_Frozen):
    """Energy of one pod on one device (or one pod's CPU), with its method and its source: the
    PromQL query, or the table and arithmetic of an estimate."""

    kwh: float = Field(ge=0)
    method: Method
    component: Component
    source: str
    device: str | None = None
    node: str | None = None
    note: str | None = None


class Carbon(_Frozen):
    """Operational emissions O = E x PUE x I (location-based, no offsets) and, apart, the
    embodied share M when the GPU product has ``embodied_kg_co2e``."""

    operational_kg_co2e: float = Field(ge=0)
    embodied_kg_co2e: float | None = None
    intensity_g_per_kwh: float
    region: str | None
    dataset: str
    year: int | None
    fallback: bool = False
    pue: float = 1.0


class WorkloadEnergy(_Frozen):
    """One pod's energy. In ``guard scan`` results ``workload_id`` names the scan's workload (its
    top owner, ``workloads[].id``) that runs the pod."""

    namespace: str
    pod: str
    tenant: str | None
    workload_id: str | None = None
    kwh: float = Field(ge=0)
    kwh_by_method: dict[str, float]
    figures: tuple[EnergyFigure, ...]
    carbon: Carbon
    gpu_utilisation_percent: float | None = None


class Finding(_Frozen):
    rule: str
    severity: Severity
    category: Literal["budget", "efficiency", "data"]
    message: str
    tenant: str | None = None
    namespace: str | None = None
    pod: str | None = None


class Budget(_Frozen):
    """A tenant's budget over its period: used so far, remaining and the forecast to period end
    at the current rate (used / elapsed x period length)."""

    period: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    budget_kg_co2e: float | None
    used_kg_co2e: float
    remaining_kg_co2e: float | None
    forecast_kg_co2e: float
    budget_kwh: float | None
    used_kwh: float
    remaining_kwh: float | None
    forecast_kwh: float


class TenantEnergy(_Frozen):
    tenant: str
    namespaces: tuple[str, ...]
    kwh: float
    kwh_by_method: dict[str, float]
    operational_kg_co2e: float
    embodied_kg_co2e: float | None
    budget: Budget | None = None


class Unallocated(_Frozen):
    """Energy measured on devices with no pod (idle GPUs, system use): charged to no tenant."""

    kwh: float
    source: str
    devices: tuple[str, ...] = ()


class SourceInfo(_Frozen):
    """What the energy came from: the Prometheus server and window, and the schema detected."""

    kind: Literal["prometheus", "estimate"]
    url: str | None = None
    schema_detected: tuple[str, ...] = ()
    queries: int = 0


class EnergySection(_Frozen):
    """The ``energy`` field of the scan result document."""

    since: datetime
    until: datetime
    window_seconds: float
    source: SourceInfo
    intensity_table: str
    workloads: tuple[WorkloadEnergy, ...]
    tenants: tuple[TenantEnergy, ...]
    unallocated: Unallocated
    findings: tuple[Finding, ...]
    total_kwh: float
    total_operational_kg_co2e: float
