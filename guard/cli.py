"""The ``guard`` command line.

This module (with ``webhook``) is the only place that turns errors into exit codes:
0 ok, 1 verification or policy failure, 2 usage or configuration error, 3 infrastructure error.
Commands are defined per capability in ``guard.commands.*``; each module's ``register(app)``
adds its commands. Command bodies import their heavy dependencies lazily so ``guard --help``
stays fast.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import click
import typer
from rich.console import Console
from rich.markup import escape

from guard import __version__
from guard.commands import attest, demo, oci, policy, serve, signing
from guard.commands import check as check_commands
from guard.commands import download as download_commands
from guard.commands import energy as energy_commands
from guard.commands import pin as pin_commands
from guard.commands import report as report_commands
from guard.commands import scan as scan_commands
from guard.commands import version as version_commands
from guard.commands.examples import add_examples
from guard.errors import EXIT_FAILED, EXIT_INFRA, EXIT_USAGE, GuardError

try:  # typer >= 0.26 vendors click as typer._click, whose exceptions are not click's
    from typer._click.exceptions import ClickException as _TyperClickException

    _CLICK_ERRORS: tuple[type[Exception], ...] = (click.ClickException, _TyperClickException)
except ImportError:  # older typer: click's own classes
    _CLICK_ERRORS = (click.ClickException,)

app = typer.Typer(
    name="guard",
    help="Policy and supply-chain security for machine-learning model artifacts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (signing, oci, attest, policy, serve, demo):
    _module.register(app)
energy_commands.register(app)
scan_commands.register(app)
report_commands.register(app)
check_commands.register(app)
version_commands.register(app)
pin_commands.register(app)
download_commands.register(app)


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
    ctx = command.context_class(command, info_name=command.name, parent=parent)
    params = list(command.params)
    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None and (help_option := get_help_option(ctx)) is not None:
        params.append(help_option)  # made lazily and cached on the command
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
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub, ctx)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (used by tests and ``main``)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    command = typer.main.get_command(app)
    _plain_help(command)
    add_examples(command)
    try:
        result = command.main(args=argv, prog_name="guard", standalone_mode=False)
    except GuardError as exc:
        label = "error" if exc.exit_code != EXIT_FAILED else "verification failed"
        err.print(f"[bold red]{label}:[/] {escape(str(exc))}", markup=True)
        return exc.exit_code
    except (click.exceptions.Exit, typer.Exit) as exc:
        return int(exc.exit_code)
    except _CLICK_ERRORS as exc:
        exc.show()  # type: ignore[attr-defined]
        code = int(getattr(exc, "exit_code", EXIT_USAGE))
        return EXIT_USAGE if code == 2 else code
    except (click.exceptions.Abort, typer.Abort):
        err.print("aborted")
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except OSError as exc:
        # An OS failure that no capability turned into a GuardError: infrastructure.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
        return EXIT_INFRA
    return int(result) if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run())
