"""`guard policy test` and `guard policy eval` (see guard.cli and README, section policy)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from guard.commands.output import print_json
from guard.errors import ConfigError, PolicyViolation, UsageError, VerificationError
from guard.untrusted import parse_json

if TYPE_CHECKING:
    from guard.policy.decision import Decision

policy_app = typer.Typer(
    name="policy", help="Test and evaluate the Rego policy library.", no_args_is_help=True
)

PoliciesOption = Annotated[
    Path | None,
    typer.Option(
        "--policies",
        "-p",
        help="Policy library directory (default: config's policy.directory, "
        "else the library shipped with guard).",
    ),
]


@policy_app.command("test")
def test_command(
    directory: Annotated[
        Path | None, typer.Argument(help="Policy library directory (default: shipped).")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", "-r", help="Only tests whose name matches this regex.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every test, not only failures.")
    ] = False,
    policies: Annotated[
        Path | None,
        typer.Option("--policies", "-p", help="The library directory, as for policy eval (or give DIR)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Run every test_* rule and replay samples/allowed and samples/denied of every policy."""
    from guard.policy.runner import run_library_tests  # noqa: PLC0415

    if directory is not None and policies is not None and directory != policies:
        raise UsageError(f"give the library once: DIR {directory} or --policies {policies}")
    directory = directory or policies
    report = run_library_tests(directory, match=run)
    if json_output and report.results:  # none ran: the failure document below says so instead
        doc = {
            "library": str(report.root),
            "passed": report.passed,
            "failed": len(report.failed),
            "seconds": round(report.seconds, 3),
            "results": [
                {"name": r.name, "passed": r.passed, "detail": r.detail or None} for r in report.results
            ],
        }
        print_json(doc)
    for result in report.results if not json_output else ():
        if verbose or not result.passed:
            mark = "PASS" if result.passed else "FAIL"
            typer.echo(f"{mark} {result.name}" + (f": {result.detail}" if result.detail else ""))
    failed = report.failed
    if not json_output:
        typer.echo(f"{report.root}: {report.passed} passed, {len(failed)} failed ({report.seconds:.2f}s)")
    if not report.results:
        raise UsageError(f"no tests matched in {report.root}" + (f" (--run {run!r})" if run else ""))
    if failed:
        names = ", ".join(r.name for r in failed[:10]) + (" ..." if len(failed) > 10 else "")
        raise VerificationError(f"{len(failed)} policy test(s) failed: {names}")


def _read_input(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise UsageError(f"--input: {path} does not exist") from err
    except OSError as err:
        raise UsageError(f"--input: {path} is not readable: {err.strerror or err}") from err
    # the policy engine and the schema validator recurse per level: bounded here (exit 2)
    document = parse_json(raw, f"--input: {path}", error=UsageError)
    if not isinstance(document, dict):
        raise UsageError(
            f"--input: expected a JSON object (a policy input document), found {type(document).__name__}"
        )
    return document


def _check_input_schema(document: dict[str, Any], path: Path, library: Path) -> None:
    """Refuse an input the library's ``input.schema.json`` rejects: policies read only what the
    contract names, so a partial document (``{}``) would otherwise be ALLOWED by accident. A
    library without a schema is evaluated as is."""
    from guard._deferred import import_jsonschema  # noqa: PLC0415

    import_jsonschema()  # its IRI grammar built only if an IRI is checked (see guard._deferred)
    import jsonschema  # noqa: PLC0415
    from referencing import Registry, Resource  # noqa: PLC0415

    from guard.attest.specs import json_path, load_spec_file  # noqa: PLC0415

    schema_path = library / "input.schema.json"
    if not schema_path.is_file():
        return
    try:
        raw = schema_path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{schema_path}: not a readable JSON schema: {err.strerror or err}") from err
    schema = parse_json(raw, f"{schema_path}: JSON schema", error=ConfigError)
    facts = load_spec_file("model-facts/v1")
    registry: Registry[Any] = Registry().with_resource(facts["$id"], Resource.from_contents(facts))
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    errors = sorted(
        validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message)
    )
    if errors:
        shown = "; ".join(f"{json_path(e.absolute_path)}: {e.message}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise UsageError(f"--input: {path} is not a policy input document ({schema_path}): {shown}{more}")


def print_decision(decision: Decision) -> None:
    typer.echo(decision_text(decision), nl=False)


def decision_text(decision: Decision) -> str:
    lines = ["ALLOWED" if decision.allowed else "DENIED"]
    for v in decision.violations:
        where = " ".join(
            x
            for x in (
                f"container={v.container}" if v.container else "",
                f"artifact={v.artifact}" if v.artifact else "",
            )
            if x
        )
        lines.append(f"  {v.enforcement.upper():6} [{v.severity}] {v.policy}/{v.rule}: {v.message}")
        lines.append(f"         controls: {', '.join(v.controls) or '-'}" + (f"; {where}" if where else ""))
    return "\n".join(lines) + "\n"


@policy_app.command("eval")
def eval_command(  # noqa: PLR0917 (a typer command: options are parameters)
    input_file: Annotated[
        Path,
        typer.Option("--input", "-i", help="Policy input document (JSON), see policies/input.schema.json."),
    ],
    policies: PoliciesOption = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="guard config file (YAML).")] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="File to write the decision to ('-': standard output).", metavar="FILE"
        ),
    ] = None,
    format_name: Annotated[
        Literal["text", "json"] | None,
        typer.Option("--format", help="Decision format (default: text).", show_default=False),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the decision as JSON (same as --format json).")
    ] = False,
) -> None:
    """Evaluate the library on one input and print the decision (exit 1 when denied).

    Example:

      guard policy eval -i policies/gpu/samples/denied/fit--model_exceeds_gpu_memory.json --json
    """
    from guard.config import load_config  # noqa: PLC0415
    from guard.policy.engine import make_engine  # noqa: PLC0415
    from guard.policy.library import default_library_dir  # noqa: PLC0415

    if output in ("text", "json"):  # -o used to name the format: that spelling is kept, with a warning
        typer.echo(
            f"warning: -o {output} is deprecated: -o/--output names a file now; use --format {output} "
            f"(to write a file called {output}, write -o ./{output})",
            err=True,
        )
        if format_name is not None and format_name != output:
            raise UsageError(
                f"-o {output} (deprecated spelling of --format) contradicts --format {format_name}"
            )
        format_name, output = output, None  # type: ignore[assignment]
    if as_json:
        if format_name == "text":
            raise UsageError("--json contradicts --format text")
        format_name = "json"
    fmt = format_name or "text"
    document = _read_input(input_file)
    settings = load_config(config).policy
    if policies is not None:
        settings = settings.model_copy(update={"directory": policies})
    _check_input_schema(document, input_file, settings.directory or default_library_dir())
    engine = make_engine(settings)

    async def evaluate() -> Decision:
        try:
            return await engine.evaluate(document)
        finally:
            await engine.aclose()

    decision = asyncio.run(evaluate())
    if output is None or output == "-":
        if fmt == "json":
            print_json(decision.to_json())
        else:
            print_decision(decision)
    else:
        text = json.dumps(decision.to_json(), indent=2) + "\n" if fmt == "json" else decision_text(decision)
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as err:
            raise UsageError(f"--output {output}: cannot write it ({err.strerror or err})") from err
    if not decision.allowed:
        # the decision itself was printed (or written) above: the error line only sums it up
        rules = ", ".join(dict.fromkeys(f"{v.policy}/{v.rule}" for v in decision.denials))
        shown = "" if output is None or output == "-" else f" (written to {output})"
        raise PolicyViolation(f"denied by {len(decision.denials)} violation(s){shown}: {rules}")


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the CLI."""
    app.add_typer(policy_app)
