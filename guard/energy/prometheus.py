"""A small client for the Prometheus HTTP API (``/api/v1/query``): instant vectors only.

Every query of a scan shares one deadline (``timeout_seconds`` in total, not per read). An
unreachable server, a 5xx, a deadline or an answer that is not Prometheus' JSON is a
``PrometheusError`` (exit 3) naming the URL and the query: never an empty result that would read
as zero energy.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from guard.energy.settings import PrometheusSettings
from guard.errors import ConfigError, InfrastructureError

log = logging.getLogger(__name__)

MAX_SERIES = 200_000  # a bound on one answer's series (10,000 pods x a few GPUs fits)
MAX_NOT_FINITE = 1000  # the dropped NaN / Inf samples kept to report


class PrometheusError(InfrastructureError):
    """The Prometheus server could not answer the query (down, 5xx, deadline, not its API)."""


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float


def _read_secret(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"energy.prometheus.{what}: cannot read {path}: {err}") from err


class PrometheusClient:
    """Instant queries against one server. ``queries`` counts the requests made."""

    def __init__(self, settings: PrometheusSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = str(settings.url).rstrip("/")
        self.timeout = settings.timeout_seconds
        headers = {"Accept": "application/json"}
        auth: httpx.BasicAuth | None = None
        if settings.bearer_token_file is not None:
            headers["Authorization"] = "Bearer " + _read_secret(settings.bearer_token_file, "bearerTokenFile")
        if settings.username is not None and settings.password_file is not None:
            auth = httpx.BasicAuth(settings.username, _read_secret(settings.password_file, "passwordFile"))
        verify: bool | ssl.SSLContext = True
        if settings.insecure_skip_tls_verify:
            log.warning(
                "energy.prometheus.insecureSkipTlsVerify: TLS certificates of %s are NOT verified",
                self.url,
            )
            verify = False
        elif settings.ca_file is not None:
            if not settings.ca_file.is_file():
                raise ConfigError(f"energy.prometheus.caFile: {settings.ca_file} does not exist")
            try:
                verify = ssl.create_default_context(cafile=str(settings.ca_file))
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(
                    f"energy.prometheus.caFile: {settings.ca_file} is not a PEM CA bundle: {err}"
                ) from err
        self._client = httpx.Client(headers=headers, auth=auth, verify=verify, transport=transport)
        self._deadline: float | None = None
        self.queries = 0
        # (query, sample) of the NaN / Inf samples dropped: no figure, never a zero
        self.not_finite: list[tuple[str, Sample]] = []

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_deadline(self) -> None:
        """Start the total time budget of the queries that follow (one scan)."""
        self._deadline = time.monotonic() + self.timeout

    def _remaining(self, query: str) -> float:
        if self._deadline is None:
            self.start_deadline()
        assert self._deadline is not None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise PrometheusError(
                f"Prometheus {self.url}: the scan's {self.timeout:g} s deadline passed "
                f"before the query {query}"
            )
        return left

    def query(self, promql: str, at: datetime) -> list[Sample]:
        """An instant query evaluated at ``at``; its vector as samples (NaN and Inf dropped, and
        kept in ``not_finite`` for the scan to report)."""
        timeout = self._remaining(promql)
        self.queries += 1
        try:
            resp = self._client.post(
                f"{self.url}/api/v1/query",
                data={"query": promql, "time": f"{at.timestamp():.3f}", "timeout": f"{timeout:.0f}s"},
                timeout=timeout,
            )
        except httpx.HTTPError as err:
            raise PrometheusError(
                f"Prometheus {self.url} unreachable ({err.__class__.__name__}: {err}); query: {promql}"
            ) from err
        return self._parse(resp, promql)

    def _parse(self, resp: httpx.Response, promql: str) -> list[Sample]:
        where = f"Prometheus {self.url}"
        try:
            body: Any = resp.json()
        except ValueError as err:
            raise PrometheusError(
                f"{where} answered HTTP {resp.status_code} with a body that is not JSON; query: {promql}"
            ) from err
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise PrometheusError(
                f"{where} answered HTTP {resp.status_code}: "
                f"{error or 'not a Prometheus API answer'}; query: {promql}"
            )
        data = body.get("data")
        if (
            not isinstance(data, dict)
            or data.get("resultType") != "vector"
            or not isinstance(data.get("result"), list)
        ):
            raise PrometheusError(
                f"{where}: expected a vector result, found {str(data)[:120]}; query: {promql}"
            )
        result = data["result"]
        if len(result) > MAX_SERIES:
            raise PrometheusError(
                f"{where}: {len(result)} series in one answer (at most {MAX_SERIES}); query: {promql}"
            )
        samples = []
        for item in result:
            try:
                labels = {str(k): str(v) for k, v in item["metric"].items()}
                value = float(item["value"][1])
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
                raise PrometheusError(
                    f"{where}: a malformed sample {str(item)[:120]}; query: {promql}"
                ) from err
            if math.isfinite(value):
                samples.append(Sample(labels, value))
            elif len(self.not_finite) < MAX_NOT_FINITE:
                self.not_finite.append((promql, Sample(labels, value)))
        return samples
