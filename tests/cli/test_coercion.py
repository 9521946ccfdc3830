"""guard.commands.coercion: every parameter of the CLI converts its values as typer's own pydantic
adapter does (the same value or the same error), and a command run converts without pydantic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import typer

pytest.importorskip("typer._coercion")

from typer._coercion import build_runtime_param

from guard.cli import app
from guard.commands.coercion import PlainRuntimeParam


def _parameters() -> list[tuple[str, Any, Any]]:
    """(command path and parameter name, command, parameter) of every parameter in the CLI."""
    found: list[tuple[str, Any, Any]] = []
    pending: list[tuple[str, Any]] = [("guard", typer.main.get_command(app))]
    while pending:
        path, command = pending.pop()
        ctx = command.context_class(command, info_name=command.name)
        params = [*command.params, command.get_help_option(ctx)]
        found += [(f"{path} {p.name}", command, p) for p in params if p is not None]
        pending += [(f"{path} {name}", sub) for name, sub in getattr(command, "commands", {}).items()]
    return found


def _samples(annotation: Any, tmp: Path) -> list[Any]:
    if get_origin(annotation) is list:
        element = get_args(annotation)[0]
        one = _samples(element, tmp)
        return [tuple(one[:2]), tuple(one), (), one[0], list(one[:1])]
    if get_origin(annotation) is not None:  # a Literal
        choices = list(get_args(annotation))
        return [*choices, choices[0].upper(), "", "nope", 3]
    if annotation is bool:
        return [True, False, "true", "0", "yes", "", "maybe", 1]
    if annotation is int:
        return [0, 7, -3, "12", "-4", "007", " 5 ", "+2", "1_000", "1.0", "x", "", True, 2.0]
    if annotation is float:
        return [0.5, 2.0, 3, "1.5", "x", "", True]
    existing = tmp / "file"
    existing.write_text("x")
    return [
        "a", "", "-", "x y", "ä/ü", "dir/", str(existing), str(tmp), str(tmp / "missing"),
        str(existing) + "/", "./rel/../p", b"bytes", 3, Path("p"), None,
    ]  # fmt: skip


def _outcome(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        result = runtime.coerce(value, param=param, ctx=ctx)
    except Exception as err:  # the error is the outcome compared
        return ("error", (type(err).__name__, str(getattr(err, "message", err))))
    return ("value", (type(result).__name__, result))


def test_every_parameter_converts_as_typers_own_adapter(tmp_path: Path) -> None:
    parameters = _parameters()
    assert len(parameters) > 200  # the whole tree
    plain = 0
    for name, command, param in parameters:
        runtime = param.get_runtime_param()
        assert isinstance(runtime, PlainRuntimeParam), name
        plain += runtime.leaf.__name__ != "_never"
        typer_own = build_runtime_param(param.type_descriptor)
        ctx = command.context_class(command, info_name=command.name)
        for value in _samples(param.type_descriptor.annotation, tmp_path):
            ours = _outcome(runtime, value, param, ctx)
            theirs = _outcome(typer_own, value, param, ctx)
            assert ours == theirs, (name, value)
    assert plain == len(parameters)  # every type guard's CLI uses has a plain converter


def test_a_command_runs_without_importing_pydantic(tmp_path: Path) -> None:
    """`guard verify DIR` converts its options (paths, strings, flags, a None default) plainly."""
    code = (
        "import json, sys\nfrom guard.cli import run\n"
        f"code = run(['verify', {str(tmp_path)!r}, '--key', {str(tmp_path / 'k.pem')!r}])\n"
        "print(json.dumps([code, 'pydantic' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    code_, pydantic_loaded = json.loads(out.strip().splitlines()[-1])
    assert code_ != 0  # no signature there: the command ran and failed, as it should
    assert pydantic_loaded is False
