"""CLI-wide behaviour: how --help renders options for every command."""

from __future__ import annotations

import re

import pytest

from guard.cli import run


def _help(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setenv("COLUMNS", "200")
    capsys.readouterr()
    assert run([*argv, "--help"]) == 0
    return capsys.readouterr().out


def test_flags_show_no_value_and_repeatable_options_their_element_type(
    command_paths: list[list[str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = command_paths
    assert ["verify"] in commands and ["push"] in commands and len(commands) > 10
    for argv in commands:
        out = _help(argv, monkeypatch, capsys)
        assert "<bool>" not in out, (argv, out)
        assert "<list[" not in out, (argv, out)
        assert re.search(r"--help\s+Show this message", out), (argv, out)


def test_option_types_are_still_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    verify = _help(["verify"], monkeypatch, capsys)
    assert re.search(r"--json\s+Print the result as JSON", verify)
    assert re.search(r"--signature\s+<path>\s", verify)
    sign = _help(["sign"], monkeypatch, capsys)
    assert re.search(r"--certificate-chain\s+<path>\s", sign)
    assert re.search(r"--ignore\s+<str>\s", sign)
    assert re.search(r"--passphrase-env\s+VAR\s", sign)  # metavars set by commands stay


def test_a_flag_given_a_value_is_still_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["verify", "m", "--json=yes"]) == 2
    assert "--json" in capsys.readouterr().err
