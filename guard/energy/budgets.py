"""Budget periods, forecasts and budget findings per tenant.

A period is a calendar month (default), quarter or year, in UTC. Used is the period's energy up to
the scan's end; the forecast extends the current rate (used / time elapsed) to the period's end.
Findings: over budget (high), forecast over budget (medium), 80% of the budget used (low); for the
kg CO2e budget and, when set, the kWh budget.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from guard.config import CarbonBudget
from guard.energy.models import Budget, Finding
from guard.errors import UsageError

LOW_SHARE = 0.8
_TINY = timedelta(microseconds=1)


def period_bounds(kind: str, at: datetime) -> tuple[datetime, datetime, str]:
    """The calendar period of ``kind`` holding ``at`` (just before ``at`` when ``at`` is a period
    boundary: the period a scan that ends there measured)."""
    at = at.astimezone(UTC)
    month0 = at.month - 1
    year = at.year
    if kind == "month":
        start = datetime(year, at.month, 1, tzinfo=UTC)
        if start == at:
            return period_bounds(kind, at - _TINY)
        end = datetime(year + (at.month == 12), at.month % 12 + 1, 1, tzinfo=UTC)
        return start, end, f"{year}-{at.month:02d}"
    if kind == "quarter":
        q = month0 // 3
        start = datetime(year, q * 3 + 1, 1, tzinfo=UTC)
        if start == at:
            return period_bounds(kind, at - _TINY)
        end = datetime(year + (q == 3), (q * 3 + 3) % 12 + 1, 1, tzinfo=UTC)
        return start, end, f"{year}-Q{q + 1}"
    if kind == "year":
        start = datetime(year, 1, 1, tzinfo=UTC)
        if start == at:
            return period_bounds(kind, at - _TINY)
        return start, datetime(year + 1, 1, 1, tzinfo=UTC), str(year)
    raise UsageError(f"a budget period: expected month, quarter or year, found {kind!r}")


def parse_period(text: str) -> tuple[datetime, datetime, str]:
    """``2026-11`` (a month), ``2026-Q4`` (a quarter) or ``2026`` (a year)."""
    if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
        year, month = int(m.group(1)), int(m.group(2))
        if 1 <= month <= 12:
            return period_bounds("month", datetime(year, month, 15, tzinfo=UTC))
    elif m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
        return period_bounds("quarter", datetime(int(m.group(1)), int(m.group(2)) * 3 - 1, 15, tzinfo=UTC))
    elif m := re.fullmatch(r"(\d{4})", text):
        return period_bounds("year", datetime(int(m.group(1)), 6, 15, tzinfo=UTC))
    raise UsageError(f"--period: expected YYYY-MM, YYYY-Qn or YYYY, found {text!r}")


def budget_for(budget: CarbonBudget, used_kg: float, used_kwh: float, as_of: datetime) -> Budget:
    start, end, label = period_bounds(budget.period, as_of)
    as_of = min(as_of, end)
    elapsed = (as_of - start).total_seconds()
    length = (end - start).total_seconds()
    scale = length / elapsed if elapsed > 0 else 1.0
    return Budget(
        period=label,
        period_start=start,
        period_end=end,
        as_of=as_of,
        budget_kg_co2e=budget.budget_kg_co2e,
        used_kg_co2e=used_kg,
        remaining_kg_co2e=budget.budget_kg_co2e - used_kg,
        forecast_kg_co2e=used_kg * scale,
        budget_kwh=budget.budget_kwh,
        used_kwh=used_kwh,
        remaining_kwh=None if budget.budget_kwh is None else budget.budget_kwh - used_kwh,
        forecast_kwh=used_kwh * scale,
    )


def budget_findings(tenant: str, b: Budget) -> list[Finding]:
    out: list[Finding] = []
    checks = [("kg CO2e", b.budget_kg_co2e, b.used_kg_co2e, b.forecast_kg_co2e, "")]
    if b.budget_kwh is not None:
        checks.append(("kWh", b.budget_kwh, b.used_kwh, b.forecast_kwh, "_kwh"))
    for unit, limit, used, forecast, suffix in checks:
        if limit is None:
            continue
        head = f"tenant {tenant!r}, period {b.period}: {used:.2f} {unit} used of a budget of {limit:g} {unit}"
        if used > limit:
            out.append(
                Finding(
                    rule=f"carbon_budget_exceeded{suffix}",
                    severity="high",
                    category="budget",
                    tenant=tenant,
                    message=f"{head}: over budget by {used - limit:.2f} {unit}",
                )
            )
        elif forecast > limit:
            out.append(
                Finding(
                    rule=f"carbon_budget_forecast_exceeded{suffix}",
                    severity="medium",
                    category="budget",
                    tenant=tenant,
                    message=f"{head}: at the current rate {forecast:.2f} {unit} by "
                    f"{b.period_end:%Y-%m-%d}, over budget",
                )
            )
        elif used >= LOW_SHARE * limit:
            out.append(
                Finding(
                    rule=f"carbon_budget_low{suffix}",
                    severity="low",
                    category="budget",
                    tenant=tenant,
                    message=f"{head}: {used / limit:.0%} used",
                )
            )
    return out
