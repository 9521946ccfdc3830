"""`guard energy`: measured energy, carbon and tenant budgets over a period (see README, Energy
and carbon). The same library (guard.energy) fills the ``energy`` part of `guard scan`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from guard.commands.output import print_document
from guard.errors import PolicyViolation, UsageError

if TYPE_CHECKING:
    from guard.config import GuardConfig
    from guard.energy.models import EnergySection

SEVERITIES = ("low", "medium", "high")
REGION_LABEL = "topology.kubernetes.io/region"


def _time(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise UsageError(
            f"{option}: expected an RFC 3339 time (2026-11-01T00:00:00Z), found {value!r}"
        ) from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def window_from_options(
    period: str | None, since: str | None, until: str | None, now: datetime | None = None
) -> Any:
    """The scan window: ``--period`` (up to now when it is the current one), or ``--since``
    [``--until``, default now]; neither: the current month to now."""
    from guard.energy.budgets import parse_period, period_bounds  # noqa: PLC0415
    from guard.energy.sources.base import Window  # noqa: PLC0415

    now = now or datetime.now(UTC)
    if period is not None and (since is not None or until is not None):
        raise UsageError("give --period or --since/--until, not both")
    if period is not None:
        start, end, _ = parse_period(period)
        if start >= now:
            raise UsageError(f"--period {period} has not started yet")
        return Window(start, min(end, now))
    if since is None and until is not None:
        raise UsageError("--until needs --since")
    if since is None:
        start, _, _ = period_bounds("month", now)
        return Window(start, now)
    window = Window(_time(since, "--since"), _time(until, "--until") if until else now)
    if window.seconds <= 0:
        raise UsageError(f"--since {since} is not before --until {until or 'now'}")
    return window


def _read_json(path: Path, what: str) -> Any:
    from guard.textfile import read_user_text  # noqa: PLC0415

    text = read_user_text(path, what=what, expected="JSON (kubectl get ... -o json)")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise UsageError(f"{what} {path}: not JSON: {err}") from err


def prometheus_settings(config: GuardConfig, url: str | None, **options: Any) -> Any:
    """The Prometheus settings: the config's ``energy.prometheus``, with the command line's
    options over it; None when neither names a server."""
    from pydantic import ValidationError  # noqa: PLC0415

    from guard.config import format_validation_error  # noqa: PLC0415
    from guard.energy.settings import PrometheusSettings  # noqa: PLC0415

    base = config.energy.prometheus.model_dump() if config.energy.prometheus else {}
    given = {k: v for k, v in options.items() if v not in (None, False)}
    if url is not None:
        base = {"url": url} if not base else {**base, "url": url}
    if not base and not given:
        return None
    try:
        return PrometheusSettings.model_validate({**base, **given})
    except ValidationError as err:
        raise UsageError(format_validation_error(err, "--prometheus")) from err


def run_energy_scan(
    config: GuardConfig,
    settings: Any,
    window: Any,
    *,
    pods: Path | None = None,
    nodes: Path | None = None,
) -> EnergySection:
    from guard.energy.collect import ScanInputs, scan_energy  # noqa: PLC0415
    from guard.energy.prometheus import PrometheusClient  # noqa: PLC0415
    from guard.energy.sources.estimate import node_labels, pod_records  # noqa: PLC0415

    node_doc = _read_json(nodes, "nodes file") if nodes else None
    records = pod_records(_read_json(pods, "pods file"), config.cluster, node_doc) if pods else []
    regions = {
        n: labels[REGION_LABEL] for n, labels in node_labels(node_doc).items() if labels.get(REGION_LABEL)
    }
    inputs = ScanInputs(pods=records, node_regions=regions)
    if settings is None:
        return scan_energy(config, None, window, inputs)
    with PrometheusClient(settings) as client:
        return scan_energy(config, client, window, inputs)


def _summary(section: EnergySection) -> str:
    lines = [
        f"energy {section.since:%Y-%m-%dT%H:%M:%SZ} .. {section.until:%Y-%m-%dT%H:%M:%SZ} from "
        f"{section.source.url or 'estimates only'} "
        f"({'; '.join(section.source.schema_detected) or 'no schema'})"
    ]
    for t in section.tenants:
        methods = ", ".join(f"{m} {v:.3f}" for m, v in sorted(t.kwh_by_method.items())) or "none"
        line = f"  tenant {t.tenant}: {t.kwh:.3f} kWh ({methods}), {t.operational_kg_co2e:.3f} kg CO2e"
        if t.budget is not None:
            b = t.budget
            line += (
                f"; {b.period}: {b.used_kg_co2e:.3f} of {b.budget_kg_co2e:g} kg used, "
                f"forecast {b.forecast_kg_co2e:.3f} kg"
            )
        lines.append(line)
    lines.append(f"  unallocated: {section.unallocated.kwh:.3f} kWh (charged to no tenant)")
    lines.extend(f"  [{f.severity}] {f.rule}: {f.message}" for f in section.findings)
    return "\n".join(lines)


def energy_command(  # noqa: PLR0917 (a typer command: one parameter per option)
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus", help="Prometheus URL (else config energy.prometheus.url; none: estimates only)."
        ),
    ] = None,
    period: Annotated[
        str | None, typer.Option("--period", help="YYYY-MM, YYYY-Qn or YYYY (default: this month to now).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Window start (RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Window end (RFC 3339; default now).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="guard config file (YAML).")] = None,
    pods: Annotated[
        Path | None, typer.Option("--pods", help="PodList JSON (kubectl get pods -A -o json) for estimates.")
    ] = None,
    nodes: Annotated[
        Path | None, typer.Option("--nodes", help="NodeList JSON for regions and GPU products.")
    ] = None,
    bearer_token_file: Annotated[
        Path | None, typer.Option("--bearer-token-file", help="File holding a bearer token.")
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", help="Basic auth user (with --password-file).")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="File holding the basic auth password.")
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA bundle (PEM) to verify the server's TLS.")
    ] = None,
    insecure_skip_tls_verify: Annotated[
        bool, typer.Option("--insecure-skip-tls-verify", help="Do NOT verify TLS (named so).")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Total seconds for all queries (default 60).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write the JSON result to ('-': stdout).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result.")] = False,
    publish_usage: Annotated[
        Path | None,
        typer.Option("--publish-usage", help="Write each tenant's period-to-date usage for admission."),
    ] = None,
    fail_on: Annotated[
        Literal["low", "medium", "high"] | None,
        typer.Option("--fail-on", help="Exit 1 on a finding of this severity or above."),
    ] = None,
) -> None:
    """Measure energy per workload and tenant, turn it into CO2e and track budgets."""
    from guard.config import load_config  # noqa: PLC0415
    from guard.energy.usage import publish_usage as publish  # noqa: PLC0415

    if fail_on is not None and fail_on not in SEVERITIES:
        raise UsageError(f"--fail-on: expected one of {', '.join(SEVERITIES)}, found {fail_on!r}")
    cfg = load_config(config)
    settings = prometheus_settings(
        cfg,
        prometheus,
        bearer_token_file=bearer_token_file,
        username=username,
        password_file=password_file,
        ca_file=ca_file,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        timeout_seconds=timeout,
    )
    window = window_from_options(period, since, until)
    section = run_energy_scan(cfg, settings, window, pods=pods, nodes=nodes)
    text = section.model_dump_json(by_alias=True, indent=2)
    to_stdout = output is not None and str(output) == "-"
    if output is not None and not to_stdout:
        from guard.signing.model import write_atomic  # noqa: PLC0415

        try:  # replaces a symlink planted at the path rather than writing through it
            write_atomic(output, (text + "\n").encode("utf-8"), mode=None)
        except OSError as err:
            raise UsageError(f"--output {output}: cannot write it: {err.strerror or err}") from err
    if publish_usage is not None:
        publish(section, publish_usage)
    if as_json or to_stdout:
        print_document(text)
    else:
        typer.echo(_summary(section))
    if fail_on is not None:
        worst = [f for f in section.findings if SEVERITIES.index(f.severity) >= SEVERITIES.index(fail_on)]
        if worst:
            raise PolicyViolation(f"{len(worst)} energy finding(s) at {fail_on} or above: {worst[0].message}")


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("energy")(energy_command)


class EnergyRequest:
    """The energy part of `guard scan` (``--prometheus`` / ``--period`` / ``--since``): taps the
    pods the scan lists, then fills the result's ``energy`` and publishes usage. Prometheus
    unreachable makes the result partial (exit 3 unless --allow-partial), never a zero."""

    def __init__(self, prometheus: str | None, window: Any, publish_usage: Path | None) -> None:
        self.prometheus = prometheus
        self.window = window
        self.publish_usage = publish_usage

    @classmethod
    def from_options(
        cls,
        prometheus: str | None,
        period: str | None,
        since: str | None,
        until: str | None,
        publish_usage: Path | None,
    ) -> EnergyRequest | None:
        if prometheus is None and period is None and since is None and until is None:
            if publish_usage is not None:
                raise UsageError("--publish-usage needs --prometheus (or --period / --since for estimates)")
            return None
        return cls(prometheus, window_from_options(period, since, until), publish_usage)

    def tap(self, source: Any, config: GuardConfig) -> Any:
        from guard.energy.scan_link import PodTap  # noqa: PLC0415

        return PodTap(source, config.cluster)

    def attach(self, result: Any, config: GuardConfig, tap: Any) -> Any:
        from guard.energy.collect import ScanInputs, scan_energy  # noqa: PLC0415
        from guard.energy.prometheus import PrometheusClient, PrometheusError  # noqa: PLC0415
        from guard.energy.usage import publish_usage  # noqa: PLC0415

        settings = prometheus_settings(config, self.prometheus)
        inputs = ScanInputs(pods=tap.pods)
        try:
            if settings is None:
                section = scan_energy(config, None, self.window, inputs)
            else:
                with PrometheusClient(settings) as client:
                    section = scan_energy(config, client, self.window, inputs)
        except PrometheusError as err:
            scan = result.scan.model_copy(
                update={"partial": True, "partial_reasons": (*result.scan.partial_reasons, f"energy: {err}")}
            )
            return result.model_copy(update={"scan": scan})
        if self.publish_usage is not None:
            publish_usage(section, self.publish_usage)
        owners = {(w.namespace, pod): w.id for w in result.workloads for pod in w.pod_names}
        section = section.model_copy(
            update={
                "workloads": tuple(
                    w.model_copy(update={"workload_id": owners.get((w.namespace, w.pod))})
                    for w in section.workloads
                )
            }
        )
        return result.model_copy(update={"energy": section})
