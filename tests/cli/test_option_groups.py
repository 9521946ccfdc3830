"""One definition per option concern: every command that takes trust, signing or registry
options shows the same options (names, help, panel) in the same order, from one dataclass."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import typer

from guard.cli import app
from guard.commands.option_groups import grouped
from guard.commands.registry_options import RegistryOptions
from guard.commands.trust_options import SigningOptions, TrustOptions

GROUPS = {
    TrustOptions: ("verify", "pull", "facts", "download"),
    SigningOptions: ("sign", "attest", "report"),
    RegistryOptions: ("verify", "push", "pull", "attach", "discover", "attest", "facts", "download"),
}


def _options(command: str, group: type[Any]) -> list[tuple[Any, ...]]:
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    names = [f.name for f in dataclasses.fields(group)]
    shown = {p.name: p for p in cmd.params}
    assert set(names) <= set(shown), f"{command} lacks {set(names) - set(shown)}"
    order = [p.name for p in cmd.params if p.name in names]
    assert order == names, f"{command}: the group's options are not together in order"
    return [(tuple(shown[n].opts), shown[n].help, getattr(shown[n], "rich_help_panel", None)) for n in names]


@pytest.mark.parametrize(("group", "commands"), GROUPS.items(), ids=lambda x: getattr(x, "__name__", ""))
def test_each_group_reads_the_same_in_every_command(group: type[Any], commands: tuple[str, ...]) -> None:
    first = _options(commands[0], group)
    for command in commands[1:]:
        assert _options(command, group) == first, command


def test_grouped_builds_the_group_and_keeps_the_other_parameters() -> None:
    seen: dict[str, Any] = {}

    @grouped
    def command(target: str, trust: TrustOptions = TrustOptions(), flag: bool = False) -> None:  # noqa: B008
        seen.update(target=target, trust=trust, flag=flag)

    import inspect

    params = list(inspect.signature(command).parameters)
    assert params == ["target", *(f.name for f in dataclasses.fields(TrustOptions)), "flag"]
    fields = {f.name: f.default for f in dataclasses.fields(TrustOptions)}
    expanded: Any = command  # typer's view: the group's fields are parameters of their own
    expanded(target="d", flag=True, **{**fields, "identity": "ci@example.com", "issuer": "https://i"})
    assert seen["target"] == "d" and seen["flag"] is True
    assert seen["trust"] == TrustOptions(identity="ci@example.com", issuer="https://i")
    assert seen["trust"].given() and not TrustOptions().given()
    assert RegistryOptions(insecure=True, docker_config=None).given() == ["--insecure"]
