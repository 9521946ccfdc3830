"""What a report reads of the scan result's ``energy`` section (filled by the energy scan): each
tenant's kWh by method, kg CO2e and budget, the Prometheus source and window, the intensity
dataset. The rest is ignored; a section of another shape is said not read, never guessed at."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from guard.report.model import EnergyRow


def _wire_name(field: str) -> str:
    """The energy section's wire names: camelCase with CO2e spelled as in the policy input
    (``operationalKgCO2e``), as guard.energy writes them; the Python names are accepted too."""
    return to_camel(field).replace("Co2E", "CO2e")


_CONFIG = ConfigDict(extra="ignore", allow_inf_nan=False, alias_generator=_wire_name, populate_by_name=True)


class Budget(BaseModel):
    model_config = _CONFIG
    period: str | None = None
    budget_kg_co2e: float | None = None
    used_kg_co2e: float | None = None
    forecast_kg_co2e: float | None = None


class TenantEnergy(BaseModel):
    model_config = _CONFIG
    tenant: str
    kwh: float
    kwh_by_method: dict[str, float] = {}
    operational_kg_co2e: float
    embodied_kg_co2e: float | None = None
    budget: Budget | None = None


class EnergySource(BaseModel):
    model_config = _CONFIG
    kind: str | None = None
    url: str | None = None


class EnergyFindingView(BaseModel):
    model_config = _CONFIG
    rule: str
    severity: str
    category: str
    message: str
    tenant: str | None = None
    namespace: str | None = None
    pod: str | None = None


class EnergyView(BaseModel):
    """What the report reads of the scan's ``energy`` section (issue 11); the rest is ignored."""

    model_config = _CONFIG
    since: datetime | None = None
    until: datetime | None = None
    source: EnergySource | None = None
    intensity_table: str | None = None
    tenants: tuple[TenantEnergy, ...] = ()
    findings: tuple[EnergyFindingView, ...] = ()


def read_energy(raw: BaseModel | dict[str, Any] | None) -> tuple[EnergyView | None, str | None]:
    """The report's view of the scan's energy section (the typed ``EnergySection``, or its JSON
    as a result file has it), or why it was left out."""
    if raw is None:
        return None, None
    data = raw.model_dump(mode="json", by_alias=True) if isinstance(raw, BaseModel) else raw
    try:
        return EnergyView.model_validate(data), None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return None, f"energy section not read (energy.{where}: {first['msg']}); energy is left out"


def energy_row(tenant: str, parts: Sequence[TenantEnergy]) -> EnergyRow | None:
    if not parts:
        return None
    methods: Counter[str] = Counter()
    for p in parts:
        methods.update(p.kwh_by_method)
    budgets = [p.budget for p in parts if p.budget is not None]

    def total(values: list[float | None]) -> float | None:
        return (
            None if not values or any(v is None for v in values) else sum(v for v in values if v is not None)
        )

    return EnergyRow(
        tenant=tenant,
        kwh=sum(p.kwh for p in parts),
        kwh_by_method=dict(methods),
        kg_co2e=sum(p.operational_kg_co2e + (p.embodied_kg_co2e or 0.0) for p in parts),
        budget_kg_co2e=total([b.budget_kg_co2e for b in budgets]),
        used_kg_co2e=total([b.used_kg_co2e for b in budgets]),
        forecast_kg_co2e=total([b.forecast_kg_co2e for b in budgets]),
        period=budgets[0].period if budgets else None,
    )
