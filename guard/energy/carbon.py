"""Energy to CO2e: grid intensity per region (location-based, no offsets), PUE, embodied share.

The intensity table ships with guard (``guard/data/grid-intensity.csv``: dated, each row its
dataset and year); ``energy.intensityTable`` (a CSV of the same shape) and
``energy.gridIntensity`` (per region in the config) override or extend it. A region the table
does not know, or no region at all, falls back to the world average (475 g/kWh, IEA 2019, as
CodeCarbon) and the result says so (``fallback: true``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from guard.config import ClusterFacts
from guard.energy.models import Carbon
from guard.energy.settings import EnergySettings, GridIntensity
from guard.errors import ConfigError
from guard.textfile import read_user_text

TABLE_NAME = "guard/data/grid-intensity.csv"
WORLD_AVERAGE = GridIntensity(
    g_per_kwh=475.0, dataset="world average (IEA, as CodeCarbon's fallback)", year=2019
)
HOURS_PER_YEAR = 24 * 365.25


def _parse_table(text: str, source: str) -> tuple[dict[str, GridIntensity], str]:
    comments = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    rows: dict[str, GridIntensity] = {}
    reader = csv.DictReader(io.StringIO(body))
    expected = ["region", "g_per_kwh", "dataset", "year"]
    if reader.fieldnames != expected:
        raise ConfigError(
            f"{source}: expected the CSV header {','.join(expected)}, found {reader.fieldnames}"
        )
    for n, row in enumerate(reader, start=2):
        try:
            region = (row["region"] or "").strip()
            if not region:
                raise ValueError("an empty region")
            rows[region] = GridIntensity(
                g_per_kwh=float(row["g_per_kwh"]), dataset=row["dataset"], year=int(row["year"])
            )
        except (ValueError, TypeError) as err:
            raise ConfigError(
                f"{source}: data row {n - 1}: expected region,g_per_kwh,dataset,year ({err})"
            ) from err
    return rows, (comments[0] if comments else source)


@dataclass(frozen=True)
class IntensityTable:
    rows: dict[str, GridIntensity]
    description: str

    @classmethod
    def load(cls, settings: EnergySettings) -> IntensityTable:
        text = resources.files("guard").joinpath("data/grid-intensity.csv").read_text(encoding="utf-8")
        rows, description = _parse_table(text, TABLE_NAME)
        if settings.intensity_table is not None:
            path = Path(settings.intensity_table)
            user = read_user_text(
                path, what="grid intensity table", expected="a UTF-8 CSV", error=ConfigError
            )
            extra, _ = _parse_table(user, str(path))
            rows.update(extra)
            description += f"; extended by {path}"
        if settings.grid_intensity:
            rows.update(settings.grid_intensity)
            description += "; extended by energy.gridIntensity in the config"
        return cls(rows, description)

    def lookup(self, region: str | None) -> tuple[GridIntensity, bool]:
        """The row for a region, and whether it is the world-average fallback."""
        if region is not None and region in self.rows:
            return self.rows[region], False
        return WORLD_AVERAGE, True


def carbon_for(
    kwh: float,
    region: str | None,
    table: IntensityTable,
    settings: EnergySettings,
    *,
    embodied_kg_co2e: float | None = None,
) -> Carbon:
    row, fallback = table.lookup(region)
    return Carbon(
        operational_kg_co2e=kwh * settings.pue * row.g_per_kwh / 1000.0,
        embodied_kg_co2e=embodied_kg_co2e,
        intensity_g_per_kwh=row.g_per_kwh,
        region=region,
        dataset=row.dataset,
        year=row.year,
        fallback=fallback,
        pue=settings.pue,
    )


def embodied_share(cluster: ClusterFacts, product: str | None, gpu_hours: float) -> float | None:
    """SCI's M = TE x (time reserved / lifespan) x (share reserved), per reserved GPU-hour; None
    when the product has no ``embodied_kg_co2e`` (guard ships none)."""
    if product is None or product not in cluster.gpu_products:
        return None
    p = cluster.gpu_products[product]
    if p.embodied_kg_co2e is None:
        return None
    return p.embodied_kg_co2e * gpu_hours / (p.lifespan_years * HOURS_PER_YEAR)
