"""``--json`` when a command fails: one document on standard output all the same.

``guard.cli`` turns every failure into its exit code; when the command was given ``--json`` it
first prints the failure document (``failure_document``): ``error``, the error's class
(``UsageError`` for any usage error click found as well: an unknown option, a bad choice, a
missing argument), and ``reason``, its message. A command whose document has a failure shape
of its own declares it with ``@failure_fields``: the document starts from those fields
(``guard verify``: every key, ``verified`` false; ``guard demo``: ``complete`` false), then
``error`` and ``reason`` are set. A run that printed its document before failing is not given a
second one (``guard.commands.output`` counts them).

Whether ``--json`` was given is read from the arguments again, as click's shell completion
reads them (resilient: no callback, no error), so a usage error that stopped click before the
command ran still finds the command and its ``--json`` flag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from guard.commands.output import print_json

F = TypeVar("F", bound=Callable[..., Any])
# (the error, the command's parameters as given: empty when click could not parse them) -> fields
FailureFields = Callable[[BaseException, Mapping[str, Any]], dict[str, Any]]
_ATTRIBUTE = "guard_failure_fields"


def failure_fields(fields: FailureFields) -> Callable[[F], F]:
    """Declare a command's own failure fields (kept through typer's and ``grouped``'s wrappers,
    which copy a function's attributes)."""

    def declare(func: F) -> F:
        setattr(func, _ATTRIBUTE, fields)
        return func

    return declare


def print_failure(
    root: Any, args: Sequence[str], exc: BaseException, error: str, reason: str, *, parsed: bool
) -> None:
    """The failure document on standard output when ``args`` gave the command ``--json``;
    ``parsed``: click parsed the arguments (the command's parameters are the ones given)."""
    found = _json_command(root, args)
    if found is not None:
        command, params = found
        print_json(failure_document(command, exc, error, reason, params if parsed else {}))


def failure_document(
    command: Any, exc: BaseException, error: str, reason: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """``{error, reason}``, after the command's own failure fields when it has some."""
    fields: FailureFields | None = getattr(command.callback, _ATTRIBUTE, None)
    own = fields(exc, params) if fields is not None else {}
    return {**own, "error": error, "reason": reason}


def _json_command(root: Any, args: Sequence[str]) -> tuple[Any, dict[str, Any]] | None:
    """The command ``args`` name and its parameters, when one of the commands on the way was
    given ``--json`` (``guard scan --json merge ...`` too); None otherwise."""
    try:
        contexts = _contexts(root, list(args))
    except Exception:  # arguments click cannot even walk: no document asked for
        return None
    if not any(_json_given(ctx) for ctx in contexts):
        return None
    leaf = contexts[-1]
    return leaf.command, dict(leaf.params)


def _contexts(root: Any, args: list[str]) -> list[Any]:
    """The contexts from ``guard`` down to the command ``args`` name, parsed resiliently:
    no callback runs, no value is refused, an unknown option is passed over."""
    settings = {"resilient_parsing": True, "ignore_unknown_options": True}
    ctx = root.make_context("guard", args, **settings)
    found = [ctx]
    rest = [*ctx._protected_args, *ctx.args]  # what a group has yet to resolve
    while rest and hasattr(ctx.command, "resolve_command"):
        name, command, rest = ctx.command.resolve_command(ctx, rest)
        if command is None:
            break
        ctx = command.make_context(name, rest, parent=ctx, **settings)
        found.append(ctx)
        rest = [*ctx._protected_args, *ctx.args]
    return found


def _json_given(ctx: Any) -> bool:
    for param in ctx.command.params:
        if "--json" in getattr(param, "opts", ()):
            return ctx.params.get(param.name) is True
    return False
