"""The root command group, whose commands are imported when used (``guard --help`` stays fast).

``LazyGroup`` knows every command by name, the ``guard.commands`` module whose ``register(app)``
adds it and its line in ``guard --help`` (a table given by ``guard.cli``). Running a command, or
showing its help, imports its module only and builds that command only; ``guard --help`` lists
the table without importing any. ``commands`` is still the whole tree (every module loaded on
first access), for whoever walks it: the docs' reference generator, the tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo

# name -> (module under guard.commands, the command's one line in `guard --help`)
CommandTable = Mapping[str, tuple[str, str]]


class LazyGroup(TyperGroup):
    """A typer group whose commands come from ``table``; each loaded command is passed to
    ``prepare(command, name)`` once, when its module is imported."""

    table: ClassVar[CommandTable] = {}

    def __init__(self, **attrs: Any) -> None:
        self._loaded: dict[str, Any] = {}
        self._listing = False
        super().__init__(**attrs)

    # click assigns `self.commands` in __init__: the commands registered on the root app itself
    @property
    def commands(self) -> MutableMapping[str, Any]:
        """Every command, all modules loaded (what a walk of the whole tree sees)."""
        for name in self.table:
            self._load(name)
        return self._loaded

    @commands.setter
    def commands(self, value: Mapping[str, Any]) -> None:
        self._loaded.update(value)

    def _load(self, name: str) -> Any:
        found = self._loaded.get(name)
        if found is not None or name not in self.table:
            return found
        module = importlib.import_module(f"guard.commands.{self.table[name][0]}")
        app = typer.Typer()
        module.register(app)
        # Only this command of its module is built (typer reads each command's parameters from
        # its signature: `guard sign` built `keygen` and `verify` too), and any the table lacks.
        app.registered_commands = [
            info for info in app.registered_commands if self._wanted(_command_name(info), name)
        ]
        for registered, command in typer.main.get_group(app).commands.items():
            if registered not in self._loaded:
                self.prepare(command, registered)
                self._loaded[registered] = command
        return self._loaded.get(name)

    def _wanted(self, registered: str | None, name: str) -> bool:
        """Whether a command its module registers is built when ``name`` is loaded."""
        return registered is None or registered == name or registered not in self.table

    def prepare(self, command: Any, name: str) -> None:
        """Called once for each command loaded (``guard.cli``: help tweaks, examples)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.table, *(name for name in self._loaded if name not in self.table)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing and cmd_name in self.table and cmd_name not in self._loaded:
            return _summary(cmd_name, self.table[cmd_name][1])
        return self._load(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The group's help: commands listed from the table, none imported."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _command_name(info: CommandInfo) -> str | None:
    """The name typer gives a registered command (None: it cannot tell before building it)."""
    if isinstance(info.name, str):
        return info.name
    callback = info.callback
    return typer.main.get_command_name(callback.__name__) if callback is not None else None


def _summary(name: str, line: str) -> TyperCommand:
    """What ``guard --help`` shows of a command not loaded: its name and one line."""
    return TyperCommand(name, help=line, short_help=line)
