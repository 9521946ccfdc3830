"""`guard report` (see guard.cli and README, section report)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from guard.commands.option_groups import grouped
from guard.commands.output import print_document, print_json, stdout_output, write_stdout
from guard.commands.trust_options import NO_SIGNING, SigningOptions, path_argument
from guard.errors import ReportError, UsageError


@grouped
def report(  # noqa: PLR0917 (a typer command: options are parameters)
    result_text: Annotated[
        str | None,
        typer.Argument(metavar="RESULT.json", help="A result document of guard scan.", show_default=False),
    ] = None,
    format_name: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Report format.",
            metavar="<html|pdf|md|csv|json|sarif|junit|oscal>",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write ('-': standard output).", show_default=False),
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            help="The previous period's result: new / resolved / persisting findings.",
            show_default=False,
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope", help="tenant=NAME or namespace=NAME: report on that only.", show_default=False
        ),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            help="Write every format, the input and a signed manifest to this new "
            "directory (verify it with guard verify DIR).",
            show_default=False,
        ),
    ] = None,
    previous_bundle: Annotated[
        Path | None,
        typer.Option(
            "--previous-bundle",
            help="The previous bundle: its manifest digest is chained into this one.",
            show_default=False,
        ),
    ] = None,
    formats: Annotated[
        str | None,
        typer.Option(
            "--formats", help="With --bundle: comma-separated formats (default: all).", show_default=False
        ),
    ] = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the json format's JSON Schema and exit.")
    ] = False,
    signing: SigningOptions = NO_SIGNING,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON (not with -o -).")
    ] = False,
) -> None:
    """Render a scan result as an audit report, or a signed bundle of every format. The formats:
    html, pdf, md, csv, json, sarif, junit, oscal; --bundle DIR writes all of them, signed."""
    import json  # noqa: PLC0415

    from guard.report.build import build_report  # noqa: PLC0415
    from guard.report.catalogue import load_catalogue  # noqa: PLC0415
    from guard.report.formats import FORMATS, renderer  # noqa: PLC0415
    from guard.report.load import read_result  # noqa: PLC0415
    from guard.report.model import ScopeFilter, report_schema  # noqa: PLC0415

    if schema:
        print_document(json.dumps(report_schema(), indent=2, sort_keys=True))
        return
    if result_text is None:
        raise UsageError("expected RESULT.json, the result document of guard scan (or --schema)")
    result_path = path_argument(result_text, "RESULT.json")
    if bundle is None and (format_name is None or output is None):
        raise UsageError("give --format F and -o FILE, or --bundle DIR")
    if bundle is not None and (format_name is not None or output is not None):
        raise UsageError("--bundle writes every format; drop --format / -o (choose formats with --formats)")
    if bundle is None and (formats or previous_bundle or signing.given()):
        raise UsageError("--formats, --previous-bundle and signing options apply to --bundle only")
    scope_filter = ScopeFilter.parse(scope) if scope is not None else None
    result, digest = read_result(result_path)
    before, before_digest = (
        read_result(previous, "previous scan result") if previous is not None else (None, None)
    )
    now = datetime.now(UTC)
    model = build_report(result, load_catalogue(), generated=now, previous=before, scope=scope_filter)

    if bundle is not None:
        chosen = tuple(f.strip() for f in (formats or ",".join(FORMATS)).split(",") if f.strip())
        for name in chosen:
            renderer(name)  # an unknown name fails before signing is set up
        signer = signing.signer()
        from guard.report.bundle import write_bundle  # noqa: PLC0415

        manifest = write_bundle(
            bundle,
            model,
            result_path.read_bytes(),
            digest,
            chosen,
            signer,
            created=now,
            previous_bundle=previous_bundle,
            previous_result_digest=before_digest,
        )
        _written(
            json_output,
            {"bundle": str(bundle), "files": len(manifest.files), "signed": signer.method},
            f"wrote {len(manifest.files)} files to {bundle}, signed ({signer.method}): guard verify {bundle}",
            err=False,
        )
        return

    assert format_name is not None and output is not None
    stdout = stdout_output(output, json_output, "report")
    data = renderer(format_name).render(model)
    if stdout:
        write_stdout(data)
        return
    if output.is_dir():
        raise ReportError(f"-o {output} is a directory; expected a file path")
    from guard.signing.model import write_atomic  # noqa: PLC0415

    try:  # replaces a symlink planted at the path rather than writing through it; never partial
        write_atomic(output, data, mode=None)
    except OSError as err:
        raise ReportError(f"cannot write {output}: {err.strerror or err}") from err
    findings = len(model.findings)
    _written(
        json_output,
        {"output": str(output), "format": format_name, "bytes": len(data), "findings": findings},
        f"wrote {format_name} report to {output} ({len(data)} bytes, {findings} findings)",
        err=True,
    )


def _written(json_output: bool, doc: dict[str, object], message: str, *, err: bool) -> None:
    """What was written: the ``--json`` document on stdout, else the message."""
    if json_output:
        print_json(doc)
    else:
        typer.echo(message, err=err)


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.command("report")(report)
