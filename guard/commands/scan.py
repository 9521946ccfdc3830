"""`guard scan` and `guard scan merge` (see guard.cli and README, section "guard scan").

Exit codes: 0 no finding reaches --fail-on; 1 one does; 2 usage or config error; 3 a source
could not be read, or the result is partial (something could not be looked at) and
--allow-partial was not given. The result is written before the exit code is decided.
"""

from __future__ import annotations

import asyncio
import gc
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from guard.commands.energy import EnergyRequest
from guard.commands.output import print_document
from guard.errors import EXIT_FAILED, EXIT_INFRA, EXIT_OK, UsageError

if TYPE_CHECKING:
    from guard.scan.result import ScanResult
    from guard.scan.scanner import Progress
    from guard.scan.sources.live import KubeApi

FailOn = Literal["critical", "high", "medium", "low"]
# the result document is JSON wherever it goes: --json is accepted (as by every command) and changes nothing
ResultIsJson = Annotated[
    bool, typer.Option("--json", help="The result is JSON already (accepted, as by every command).")
]
_SHARD = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = _SHARD.match(value.strip())
    if match is None:
        raise UsageError(f"--shard: expected I/N (e.g. 0/8, 0-based), found {value!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise UsageError(f"--shard: expected 0 <= I < N and N >= 1, found {value!r}")
    return index, count


def exit_code(result: ScanResult, fail_on: str, allow_partial: bool) -> int:
    from guard.scan.result import SEVERITY_ORDER  # noqa: PLC0415

    if result.scan.partial and not allow_partial:
        return EXIT_INFRA
    threshold = next(i for i, s in enumerate(SEVERITY_ORDER) if s == fail_on)
    if any(SEVERITY_ORDER.index(f.severity) <= threshold for f in result.findings):
        return EXIT_FAILED
    if result.energy is not None and any(  # budget and efficiency findings of the energy scan
        SEVERITY_ORDER.index(f.severity) <= threshold for f in result.energy.findings
    ):
        return EXIT_FAILED
    return EXIT_OK


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Names in a cluster are untrusted: no control characters (terminal escapes) reach a log."""
    return _CONTROL.sub("?", text)


def summary_line(result: ScanResult) -> str:
    s = result.summary
    sev = ", ".join(f"{k} {v}" for k, v in s.by_severity.items() if v)
    partial = " PARTIAL: " + "; ".join(result.scan.partial_reasons[:3]) if result.scan.partial else ""
    return _printable(
        f"guard scan {result.scan.id}: {s.workloads} workloads ({s.ai_workloads} AI), {s.pods} pods, "
        f"{s.artifacts} artifacts, {s.findings} findings" + (f" ({sev})" if sev else "") + partial
    )


class _Progress:
    """A progress bar on a terminal (stderr); nothing otherwise (one summary line at the end)."""

    def __init__(self) -> None:
        self._bar = None
        if sys.stderr.isatty():
            from rich.progress import Progress as Bar  # noqa: PLC0415

            self._bar = Bar(transient=True)
            self._bar.start()
            self._tasks = {
                "listed": self._bar.add_task("kinds listed", total=None),
                "evaluated": self._bar.add_task("workloads evaluated", total=None),
            }

    def __call__(self, progress: Progress) -> None:
        if self._bar is not None:
            self._bar.update(self._tasks[progress.stage], completed=progress.done, total=progress.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _write(result: ScanResult, output: Path | None) -> None:
    text = result.to_json()
    if output is None or str(output) == "-":
        print_document(text, nl=False)
        return
    from guard.signing.model import write_atomic  # noqa: PLC0415

    try:  # replaces a symlink planted at the path rather than writing through it; never partial
        write_atomic(output, text.encode("utf-8"), mode=None)
    except OSError as err:
        raise UsageError(f"cannot write the result to {output}: {err.strerror or err}") from err


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    scan_app = typer.Typer(
        name="scan",
        help="Audit the AI workloads running in a cluster (or a snapshot of one).",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    @scan_app.callback()
    def scan_command(
        ctx: typer.Context,
        *,
        config: Annotated[
            Path | None, typer.Option("--config", help="guard config file (YAML): the webhook's own.")
        ] = None,
        kubeconfig: Annotated[
            Path | None,
            typer.Option("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
        ] = None,
        context: Annotated[str | None, typer.Option("--context", help="kubeconfig context.")] = None,
        in_cluster: Annotated[
            bool, typer.Option("--in-cluster", help="Use the pod's service account (running in the cluster).")
        ] = False,
        snapshot: Annotated[
            list[Path] | None,
            typer.Option("--snapshot", help="A file of `kubectl get -o json|yaml` output (repeatable)."),
        ] = None,
        namespace: Annotated[
            list[str] | None, typer.Option("--namespace", "-n", help="Only this namespace (repeatable).")
        ] = None,
        shard: Annotated[
            str | None,
            typer.Option(
                "--shard", help="I/N: only namespaces whose stable hash falls in shard I of N (0-based)."
            ),
        ] = None,
        previous: Annotated[
            Path | None,
            typer.Option("--previous", help="An earlier result: first-seen times are carried over."),
        ] = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Result file ('-', default: stdout).")
        ] = None,
        fail_on: Annotated[
            FailOn, typer.Option("--fail-on", help="Exit 1 when a finding has this severity or higher.")
        ] = "high",
        allow_partial: Annotated[
            bool,
            typer.Option(
                "--allow-partial", help="Exit 0/1 even when something could not be looked at (else 3)."
            ),
        ] = False,
        write_reports: Annotated[
            Literal["openreports", "policyreport"] | None,
            typer.Option(
                "--write-reports",
                help="Also write one report per namespace in the cluster: openreports or policyreport.",
            ),
        ] = None,
        qps: Annotated[
            float, typer.Option("--qps", help="Client-side limit of API requests per second.")
        ] = 20.0,
        page_size: Annotated[int, typer.Option("--page-size", help="Objects per LIST page.")] = 500,
        deadline: Annotated[
            float, typer.Option("--deadline", help="Seconds allowed to verify and evaluate one workload.")
        ] = 60.0,
        schema: Annotated[
            bool, typer.Option("--schema", help="Print the result document's JSON Schema and exit.")
        ] = False,
        prometheus: Annotated[
            str | None,
            typer.Option("--prometheus", help="Prometheus URL: measure energy, carbon and budgets (energy)."),
        ] = None,
        period: Annotated[
            str | None, typer.Option("--period", help="Energy period: YYYY-MM, YYYY-Qn or YYYY.")
        ] = None,
        since: Annotated[str | None, typer.Option("--since", help="Energy window start (RFC 3339).")] = None,
        until: Annotated[str | None, typer.Option("--until", help="Energy window end (default now).")] = None,
        publish_usage: Annotated[
            Path | None,
            typer.Option("--publish-usage", help="Write each tenant's measured usage for admission."),
        ] = None,
        json_output: ResultIsJson = False,
    ) -> None:
        """Audit running workloads with the webhook's own verification and policies."""
        if ctx.invoked_subcommand is not None:
            return
        if schema:
            from guard.scan.result import shipped_schema_text  # noqa: PLC0415

            print_document(shipped_schema_text(), nl=False)
            return
        if fail_on not in ("critical", "high", "medium", "low"):
            raise UsageError(f"--fail-on: expected critical, high, medium or low, found {fail_on!r}")
        if write_reports not in (None, "openreports", "policyreport"):
            raise UsageError(
                f"--write-reports: expected openreports or policyreport, found {write_reports!r}"
            )
        chosen = sum([bool(snapshot), in_cluster, kubeconfig is not None or context is not None])
        if chosen > 1:
            raise UsageError("give one source: --snapshot FILE..., --in-cluster, or --kubeconfig/--context")
        if snapshot and write_reports:
            raise UsageError("--write-reports writes into a cluster: it needs a live source, not --snapshot")
        result, api = _run(
            config=config,
            kubeconfig=kubeconfig,
            context=context,
            in_cluster=in_cluster,
            snapshot=snapshot or [],
            namespaces=tuple(namespace or ()),
            shard=parse_shard(shard),
            previous=previous,
            qps=qps,
            page_size=page_size,
            deadline=deadline,
            energy=EnergyRequest.from_options(prometheus, period, since, until, publish_usage),
        )
        _write(result, output)
        typer.echo(summary_line(result), err=True)
        if write_reports is not None and api is not None:
            from guard.scan.reports import write_reports as write  # noqa: PLC0415

            written = write(api, result, write_reports)
            typer.echo(f"wrote {written} {write_reports} report(s), one per namespace", err=True)
        raise typer.Exit(exit_code(result, fail_on, allow_partial))

    @scan_app.command("merge")
    def merge_command(
        results: Annotated[
            list[Path],
            typer.Argument(help="Shard results (guard scan --shard I/N -o ...)."),
        ],
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="File for the merged result ('-', default: stdout)."),
        ] = None,
        fail_on: Annotated[FailOn, typer.Option("--fail-on", help="As for guard scan.")] = "high",
        allow_partial: Annotated[bool, typer.Option("--allow-partial", help="As for guard scan.")] = False,
        json_output: ResultIsJson = False,
    ) -> None:
        """Join the results of the shards of one audit into one result."""
        from guard.scan.merge import load_result, merge_results  # noqa: PLC0415

        if fail_on not in ("critical", "high", "medium", "low"):
            raise UsageError(f"--fail-on: expected critical, high, medium or low, found {fail_on!r}")
        merged = merge_results([load_result(p) for p in results])
        _write(merged, output)
        typer.echo(summary_line(merged), err=True)
        raise typer.Exit(exit_code(merged, fail_on, allow_partial))

    app.add_typer(scan_app)


def _run(
    *,
    config: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    in_cluster: bool,
    snapshot: list[Path],
    namespaces: tuple[str, ...],
    shard: tuple[int, int] | None,
    previous: Path | None,
    qps: float,
    page_size: int,
    deadline: float,
    energy: EnergyRequest | None = None,
) -> tuple[ScanResult, KubeApi | None]:
    from guard.config import load_config  # noqa: PLC0415
    from guard.scan.merge import load_result  # noqa: PLC0415
    from guard.scan.scanner import ScanOptions, run_scan  # noqa: PLC0415
    from guard.scan.sources import ObjectSource  # noqa: PLC0415

    guard_config = load_config(config)
    prior = load_result(previous) if previous is not None else None
    source: ObjectSource
    api: KubeApi | None = None
    if snapshot:
        from guard.scan.sources.snapshot import SnapshotSource  # noqa: PLC0415

        source = SnapshotSource(snapshot)
    else:
        from guard.scan.sources.live import KubeApi, LiveSource  # noqa: PLC0415

        api = KubeApi(kubeconfig=kubeconfig, context=context, in_cluster=in_cluster, qps=qps)
        source = LiveSource(api, page_size=page_size)
    options = ScanOptions(namespaces=namespaces, shard=shard, previous=prior, deadline_seconds=deadline)
    tap = energy.tap(source, guard_config) if energy is not None else None
    progress = _Progress()
    try:
        result = asyncio.run(run_scan(guard_config, tap or source, options, progress))
    finally:
        progress.close()
        # the scan's engine is freed here, on the thread that ran it: the embedded policy engine
        # (regorus) must not be dropped by a later collection on another thread
        gc.collect()
    if energy is not None and tap is not None:
        result = energy.attach(result, guard_config, tap)
    return result, api
