"""The ``guard`` command line.

This module (with ``webhook``) is the only place that turns errors into exit codes:
0 ok, 1 verification or policy failure, 2 usage or configuration error, 3 infrastructure error.
Commands are defined per capability in ``guard.commands.*``; each module's ``register(app)``
adds its commands. ``COMMANDS`` names them, with their line in ``guard --help``: a command's
module is imported only when that command runs or shows its help (``guard.commands.lazy``), and
command bodies import their heavy dependencies lazily, so ``guard --help`` stays fast.
"""

from __future__ import annotations

import gc
import os
import re
import sys
from typing import Any

import typer

from guard import __version__, _deferred
from guard.commands import coercion, output
from guard.commands.examples import add_examples
from guard.commands.lazy import CommandTable, LazyGroup
from guard.errors import EXIT_FAILED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_USAGE, GuardError, PolicyViolation

try:  # typer >= 0.26 vendors click as typer._click, whose exceptions are not click's
    from typer._click.exceptions import ClickException
except ImportError:  # older typer: click's own classes (importing click costs 12 ms: not otherwise)
    from click import ClickException  # type: ignore[assignment]

# Every command: its module in guard.commands (whose register() adds it) and its line in
# `guard --help` (the first sentence of its help; tests/cli/test_lazy_commands.py checks both).
COMMANDS: CommandTable = {
    "keygen": (
        "signing",
        "Generate an ECDSA signing key pair: NAME.pem and NAME.pub.pem.",
    ),
    "sign": ("signing", "Sign a model directory (OpenSSF Model Signing v1.0) or an OCI image (cosign v3)."),
    "verify": ("signing", "Verify a signed model: the signature, the signer, and every file."),
    "push": ("oci", "Push a model directory as a CNCF ModelPack artifact; print the manifest digest."),
    "pull": (
        "oci",
        "Pull a ModelPack / cnai / KitOps artifact into DIRECTORY, verifying every blob.",
    ),
    "attach": ("oci", "Attach a signature, SBOM or attestation to an artifact as an OCI referrer."),
    "download": ("download", "Fetch an artifact's signature, attestation or SBOM and write its raw content."),
    "discover": ("oci", "List what is attached to an artifact (signatures, SBOMs, attestations)."),
    "sbom": (
        "attest",
        "Write a CycloneDX 1.6 ML-BOM of a model directory (validated against the 1.6 schema).",
    ),
    "attest": ("attest", "Sign an attestation (in-toto Statement in a Sigstore bundle) about one model."),
    "facts": ("attest", "Verify a model's signature and attestations and print its model facts."),
    "serve": (
        "serve",
        "Serve the admission webhook over TLS, and its metrics in plain HTTP.",
    ),
    "demo": ("demo", "Walk through guard end to end: sign, verify, push, attest, evaluate policies, admit."),
    "energy": ("energy", "Measure energy per workload and tenant, turn it into CO2e and track budgets."),
    "report": (
        "report",
        "Render a scan result as an audit report, or a signed bundle of every format.",
    ),
    "check": ("check", "Evaluate Kubernetes manifests exactly as the admission webhook would."),
    "version": ("version", "Print guard's version."),
    "pin": ("pin", "Pin image and model references by tag to repo:tag@sha256:..."),
    "policy": ("policy", "Test and evaluate the Rego policy library."),
    "scan": ("scan", "Audit the AI workloads running in a cluster (or a snapshot of one)."),
}


class _Commands(LazyGroup):
    table = COMMANDS

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _plain_params(self)  # the root's own options

    def prepare(self, command: Any, name: str) -> None:
        _plain_help(command)
        add_examples(command, name)

    def invoke(self, ctx: Any) -> Any:
        """Run the command; when it was given ``--json`` and fails, its failure document first
        (``guard.commands.json_failure``), unless it printed its document before failing. Here,
        not in ``run``: a usage error in the command's arguments is raised in here too, and
        typer turns Ctrl-C into exit 130 before ``run`` could see it."""
        args = [*ctx._protected_args, *ctx.args]  # the command and its arguments (click clears them)
        documents = output.printed()
        try:
            return super().invoke(ctx)
        except typer.Exit:  # an exit code the command chose (guard check, guard scan): no failure
            raise
        except BaseException as exc:
            if output.printed() == documents and not isinstance(exc, SystemExit | GeneratorExit):
                from guard.commands.json_failure import print_failure  # noqa: PLC0415 - on failure only

                _, error, reason = _failure(exc)
                print_failure(self, args, exc, error, reason, parsed=not isinstance(exc, ClickException))
            raise


app = typer.Typer(
    name="guard",
    help="Policy and supply-chain security for machine-learning model artifacts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_Commands,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"guard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail to stderr."),
) -> None:
    import logging  # noqa: PLC0415 - a command's modules import it anyway; `guard --help` need not

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _plain_help(command: Any, parent: Any = None) -> None:
    """typer >= 0.26 shows a type after every option in ``--help``, flags included (``--json
    <bool>``, ``--help <bool>``: as if they took a value), and repeatable options as Python types
    (``--ignore <list[str]>``). typer has no setting for this; its help shows an option's metavar
    when one is set. So: a flag gets an empty one (it takes no value), a repeatable option the type
    of the one value each occurrence takes (``--ignore <str>``). Metavars set by commands stay."""
    ctx = _plain_params(command, parent)
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub, ctx)


def _plain_params(command: Any, parent: Any = None) -> Any:
    """``_plain_help`` of one command's own parameters (and their plain conversion,
    ``guard.commands.coercion``); returns the context it made."""
    ctx = command.context_class(command, info_name=command.name, parent=parent)
    params = list(command.params)
    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None and (help_option := get_help_option(ctx)) is not None:
        params.append(help_option)  # made lazily and cached on the command
    coercion.install(params)  # values converted without pydantic where typer's result is plain
    for param in params:
        if getattr(param, "metavar", "") is not None:
            continue
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif getattr(param, "multiple", False) and hasattr(param, "display_type"):
            shown = re.fullmatch(r"<list\[(.+)\]>", str(param.display_type(ctx)))
            if shown is not None:
                element = shown.group(1)
                param.metavar = f"<{'path' if element == 'Path' else element}>"
        elif getattr(param, "nargs", 1) == -1 and hasattr(param, "display_type"):
            # a variadic argument (`guard scan merge RESULT...`): its element type, repeated
            shown = re.fullmatch(r"<list\[(.+)\]>", str(param.display_type(ctx)))
            if shown is not None:
                element = "path" if shown.group(1) == "Path" else shown.group(1)
                setattr(param, "display_type_rich", lambda ctx=None, text=f"<{element}>...": text)  # noqa: B010
    return ctx


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (used by tests and ``main``)."""
    command = typer.main.get_command(app)
    try:
        with _deferred.help_renderer_deferred():  # a --help page imports no Markdown renderer
            result = command.main(args=argv, prog_name="guard", standalone_mode=False)
    except typer.Exit as exc:  # click's Exit in older typer
        return int(exc.exit_code)
    except (GuardError, ClickException, typer.Abort, KeyboardInterrupt, OSError) as exc:
        code = _failure(exc)[0]
        _show(exc, code)
        return code
    return int(result) if isinstance(result, int) else 0


def _failure(exc: BaseException) -> tuple[int, str, str]:
    """A failure's exit code, and its error class and message as ``--json`` names them."""
    if isinstance(exc, GuardError):
        return exc.exit_code, type(exc).__name__, str(exc)
    if isinstance(exc, ClickException):  # an unknown option, a bad value, a missing argument...
        code = int(getattr(exc, "exit_code", EXIT_USAGE))
        code = EXIT_USAGE if code == 2 else code
        return code, "UsageError" if code == EXIT_USAGE else type(exc).__name__, exc.format_message()
    if isinstance(exc, typer.Abort | EOFError):  # click makes an EOFError (a prompt's) an Abort
        return EXIT_FAILED, "Abort", "aborted"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "KeyboardInterrupt", "interrupted"
    # An OS failure that no capability turned into a GuardError: infrastructure (else a bug).
    return EXIT_INFRA, type(exc).__name__, str(exc)


def _show(exc: BaseException, code: int) -> None:
    """A failure's message for people, on standard error."""
    if isinstance(exc, ClickException):
        exc.show()
    elif isinstance(exc, typer.Abort):
        _print_error("aborted")
    elif isinstance(exc, KeyboardInterrupt):
        _print_error("interrupted")
    elif isinstance(exc, PolicyViolation):  # a policy said no: nothing failed to verify
        _print_error(f"[bold red]denied:[/] {_escape(str(exc))}")
    else:
        label = "verification failed" if code == EXIT_FAILED else "error"
        _print_error(f"[bold red]{label}:[/] {_escape(str(exc))}")


def _escape(text: str) -> str:
    from rich.markup import escape  # noqa: PLC0415 - rich's console only when there is an error

    return escape(text)


def _print_error(markup: str) -> None:
    from rich.console import Console  # noqa: PLC0415

    Console(stderr=True, highlight=False, soft_wrap=True).print(markup, markup=True)


def main() -> None:
    """The ``guard`` program. What importing the CLI loaded (typer, its click, guard.cli: ~17,000
    objects that live as long as the process) is moved out of the garbage collector's sight
    first (``gc.freeze``): the collections a command's allocations trigger, and the interpreter's
    at exit, walked it all again (15-30 ms of CPU of a one-file ``guard sign``). The few cycles
    the imports left unreachable stay until exit; what the command makes is collected as before.
    ``guard serve`` freezes what its start-up loaded too (``webhook.app``).

    The program loads no pydantic plugin: one installed beside guard would see every validation
    of its config and of the documents it is handed (and could fail them), and looking for plugins
    scans the entry points of every installed distribution (~15 ms, at the first model built).
    ``PYDANTIC_DISABLE_PLUGINS`` already set (to anything, even empty: load them all) is kept.
    Only the program does this: code importing guard as a library keeps its own setting."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    gc.freeze()
    sys.exit(run())
