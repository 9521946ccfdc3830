"""Published usage: the scan writes each tenant's measured period-to-date usage to a file (or a
ConfigMap the chart mounts), and admission reads it instead of the typed ``used_kg_co2e``.

The file is JSON (``guard.cnai.dev/usage/v1``). ``UsageStore`` re-reads it when it changes on
disk (size, mtime or inode: a ConfigMap update swaps a symlink), like the webhook's TLS
certificate; the policy input then says which figure was used (``usedSource``), as of when, and
whether it is older than ``energy.usage_max_age_seconds`` (``usageStale``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guard.config import GuardConfig
from guard.energy.models import EnergySection, wire_name
from guard.errors import UsageError

log = logging.getLogger(__name__)

USAGE_API_VERSION = "guard.cnai.dev/usage/v1"
MAX_BYTES = 4 * 1024 * 1024


class _Frozen(BaseModel):
    """camelCase on the wire (``usedKgCO2e``, ``asOf``)."""

    model_config = ConfigDict(alias_generator=wire_name, populate_by_name=True, frozen=True, extra="forbid")


class TenantUsage(_Frozen):
    period: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    used_kg_co2e: float = Field(ge=0)
    used_kwh: float = Field(ge=0)
    forecast_kg_co2e: float = Field(ge=0)


class UsageDocument(_Frozen):
    api_version: Literal["guard.cnai.dev/usage/v1"] = Field(
        default="guard.cnai.dev/usage/v1", alias="apiVersion"
    )
    generated_at: datetime
    source: str
    tenants: dict[str, TenantUsage]


def usage_document(section: EnergySection, *, now: datetime | None = None) -> UsageDocument:
    """The tenants' period-to-date usage from a scan (tenants with a budget only)."""
    tenants = {}
    for t in section.tenants:
        b = t.budget
        if b is None:
            continue
        tenants[t.tenant] = TenantUsage(
            period=b.period,
            period_start=b.period_start,
            period_end=b.period_end,
            as_of=b.as_of,
            used_kg_co2e=b.used_kg_co2e,
            used_kwh=b.used_kwh,
            forecast_kg_co2e=b.forecast_kg_co2e,
        )
    source = section.source.url or section.source.kind
    return UsageDocument(generated_at=now or datetime.now(UTC), source=source, tenants=tenants)


def publish_usage(section: EnergySection, path: Path) -> UsageDocument:
    """Write the usage file atomically (a reader never sees half of it)."""
    doc = usage_document(section)
    text = doc.model_dump_json(by_alias=True, indent=2) + "\n"
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as err:
        raise UsageError(f"--publish-usage {path}: cannot write it: {err.strerror or err}") from err
    return doc


def parse_usage(data: bytes, source: str) -> UsageDocument:
    if len(data) > MAX_BYTES:
        raise ValueError(f"{source}: {len(data)} bytes, at most {MAX_BYTES}")
    try:
        raw: Any = json.loads(data.decode("utf-8"))
        return UsageDocument.model_validate(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{source}: not UTF-8 JSON: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{source}: not a {USAGE_API_VERSION} document: {where}: {first['msg']}") from err


class UsageStore:
    """The published usage, re-read when the file changes; a file that is missing or invalid
    leaves the last good document in place and is reported in the policy input."""

    def __init__(self, path: Path, max_age_seconds: float) -> None:
        self.path = path
        self.max_age = max_age_seconds
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._doc: UsageDocument | None = None
        self._problem: str | None = None

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as err:
            self._problem = f"usage file {self.path}: {err.strerror or err}"
            return
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
            self._doc = parse_usage(data, f"usage file {self.path}")
            self._problem = None
            log.info("reloaded the published usage from %s", self.path)
        except (OSError, ValueError) as err:
            self._problem = str(err)
            log.warning("%s", err)
        self._stamp = stamp

    def carbon_fields(self, tenant: str, typed_used: float, now: datetime | None = None) -> dict[str, Any]:
        """The policy input's ``tenant.carbon`` fields about the used figure."""
        now = now or datetime.now(UTC)
        with self._lock:
            self._refresh()
            doc, problem = self._doc, self._problem
        usage = doc.tenants.get(tenant) if doc is not None else None
        if usage is not None and now >= usage.period_end:
            problem = (
                f"the published usage of tenant {tenant!r} is for period {usage.period}, which has ended"
            )
            usage = None
        if usage is None:
            why = problem or f"usage file {self.path} has no figure for tenant {tenant!r}"
            return {
                "usedKgCO2e": typed_used,
                "usedSource": "config",
                "usageAsOf": None,
                "usageAgeSeconds": None,
                "usageStale": True,
                "usageProblem": why,
            }
        age = max(0.0, (now - usage.as_of).total_seconds())
        return {
            "usedKgCO2e": usage.used_kg_co2e,
            "usedSource": "measured",
            "usageAsOf": usage.as_of.isoformat(),
            "usageAgeSeconds": age,
            "usageStale": age > self.max_age,
            "usageProblem": problem,
        }


def usage_store(config: GuardConfig) -> UsageStore | None:
    """The store of ``energy.usage_file`` (the file ``guard energy --publish-usage`` writes, or the
    ConfigMap the chart mounts), or None when the config names none."""
    energy = config.energy
    if energy.usage_file is None:
        return None
    return UsageStore(Path(energy.usage_file), energy.usage_max_age_seconds)
