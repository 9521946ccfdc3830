"""The ``energy`` section of guard's config: where energy is measured and how carbon is counted.

Composed into ``guard.config.GuardConfig`` like the admission and policy sections. Budgets stay on
each tenant (``tenants[].carbon``); GPU board power and embodied emissions stay in
``cluster.gpuProducts`` (one product table).
"""

from __future__ import annotations

from pydantic import Field, HttpUrl, model_validator

from guard.configmodel import ConfigModel
from guard.configpath import ConfigPath


class PrometheusSettings(ConfigModel):
    """A Prometheus HTTP API (``/api/v1/query``). TLS is verified against the system roots or
    ``caFile``; ``insecureSkipTlsVerify`` turns that off and says so in a warning."""

    url: HttpUrl
    bearer_token_file: ConfigPath | None = None
    username: str | None = None
    password_file: ConfigPath | None = None
    ca_file: ConfigPath | None = None
    insecure_skip_tls_verify: bool = False
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _one_auth(self) -> PrometheusSettings:
        if self.bearer_token_file is not None and self.username is not None:
            raise ValueError("give bearerTokenFile or username/passwordFile, not both")
        if (self.username is None) != (self.password_file is None):
            raise ValueError("basic auth needs both username and passwordFile")
        return self


class GridIntensity(ConfigModel):
    """One region's grid carbon intensity (location-based, gCO2e/kWh), with its origin."""

    g_per_kwh: float = Field(gt=0, le=5000)
    dataset: str = Field(min_length=1)
    year: int = Field(ge=1990, le=2100)


class EnergySettings(ConfigModel):
    """How guard measures energy and turns it into CO2e.

    ``gridIntensity`` overrides or extends the table shipped with guard (by region name as the
    node label ``topology.kubernetes.io/region`` gives it). ``region`` is the cluster's region for
    nodes without that label. ``pue`` multiplies IT energy into facility energy (1.0: not counted)."""

    prometheus: PrometheusSettings | None = None
    region: str | None = None
    pue: float = Field(default=1.0, ge=1.0, le=5.0)
    grid_intensity: dict[str, GridIntensity] = Field(default_factory=dict)
    intensity_table: ConfigPath | None = None
    idle_gpu_threshold_percent: float = Field(default=5.0, ge=0, le=100)
    usage_file: ConfigPath | None = None
    usage_max_age_seconds: float = Field(default=7200.0, gt=0)
    mig_slices_per_gpu: int = Field(default=7, ge=1, le=64)
    resolution_seconds: float = Field(default=60.0, ge=1, le=86400)
