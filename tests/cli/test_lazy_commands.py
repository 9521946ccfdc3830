"""The command table of guard.cli: complete, its help lines true, command modules imported on use."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
import typer

from guard.cli import COMMANDS, app, run
from guard.commands.examples import summary


def _registered(module: str) -> list[str]:
    sub = typer.Typer()
    importlib.import_module(f"guard.commands.{module}").register(sub)
    return list(typer.main.get_group(sub).commands)


def test_every_registered_command_is_in_the_table_with_its_module() -> None:
    modules = {module for module, _ in COMMANDS.values()}
    found = {name: module for module in modules for name in _registered(module)}
    assert found == {name: module for name, (module, _) in COMMANDS.items()}


def test_each_line_of_the_table_is_the_first_sentence_of_the_commands_help() -> None:
    root = typer.main.get_command(app)
    for name, (_, line) in COMMANDS.items():
        command = root.commands[name]  # type: ignore[attr-defined]
        assert line == summary(command.help or ""), name
        assert command.short_help == line, name


def test_root_help_is_the_same_with_every_command_loaded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    assert run(["--help"]) == 0
    lazy = capsys.readouterr().out
    root = typer.main.get_command(app)
    assert len(root.commands) == len(COMMANDS)  # type: ignore[attr-defined]
    root.main(["--help"], prog_name="guard", standalone_mode=False)
    assert capsys.readouterr().out == lazy
    for name, (_, line) in COMMANDS.items():
        assert f" {name} " in lazy and line.split()[0] in lazy, name


def _imported_after(argv: list[str]) -> list[str]:
    code = (
        "import json, sys\nfrom guard.cli import run\n"
        f"code = run({argv!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('guard.commands.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def test_guard_help_imports_no_command_module() -> None:
    assert _imported_after(["--help"]) == [
        "guard.commands.coercion",
        "guard.commands.examples",
        "guard.commands.lazy",
        "guard.commands.output",  # what a run printed on stdout (guard.cli: the --json failure document)
    ]


def test_a_command_imports_its_own_module_only() -> None:
    imported = _imported_after(["verify", "--help"])
    assert "guard.commands.signing" in imported
    for other in ("attest", "check", "demo", "energy", "policy", "report", "scan", "serve"):
        assert f"guard.commands.{other}" not in imported


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["verfy"]) == 2
    err = capsys.readouterr().err
    assert "No such command" in err and "verify" in err


def test_a_command_builds_only_itself_of_its_module() -> None:
    """`guard sign` builds sign, not keygen and verify beside it in guard.commands.signing; a
    sibling asked for later is built then, once, and the whole tree is still every command."""
    root = typer.main.get_command(app)
    sign = root.get_command(None, "sign")  # type: ignore[attr-defined]
    assert sign is not None and sign.name == "sign"
    assert list(root._loaded) == ["sign"]  # type: ignore[attr-defined]
    verify = root.get_command(None, "verify")  # type: ignore[attr-defined]
    assert verify is not None and verify.name == "verify"
    assert list(root._loaded) == ["sign", "verify"]  # type: ignore[attr-defined]
    assert root.get_command(None, "sign") is sign  # type: ignore[attr-defined]
    assert sorted(root.commands) == sorted(COMMANDS)  # type: ignore[attr-defined]
