"""Every command's --help ends with an example, and every example parses as the command."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import typer

from guard.cli import app, run
from guard.commands.examples import EXAMPLES, add_examples


def _tree() -> Any:
    command = typer.main.get_command(app)
    add_examples(command)
    return command


def _leaves(command: Any, path: str = "") -> list[tuple[str, Any]]:
    found = [(path, command)] if path else []
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_leaves(sub, f"{path} {name}".strip()))
    return found


def test_every_command_has_an_example() -> None:
    missing = [path for path, c in _leaves(_tree()) if "Example" not in (c.epilog or "") + (c.help or "")]
    assert missing == []


@pytest.mark.parametrize(
    "example", [e for examples in EXAMPLES.values() for e in examples], ids=lambda e: e[:40]
)
def test_every_example_parses(example: str) -> None:
    words = shlex.split(example.rsplit("|", 1)[-1])
    assert words[0] == "guard"
    command, args = _tree(), words[1:]
    while getattr(command, "commands", None) and args and args[0] in command.commands:
        command, args = command.commands[args[0]], args[1:]
    ctx = command.make_context(command.name, list(args))  # raises on an unknown option / missing arg
    assert ctx.params is not None


def test_version_command(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from guard import __version__

    assert run(["version", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == __version__
    assert run(["version"]) == 0
    assert capsys.readouterr().out.startswith(f"guard {__version__}")
