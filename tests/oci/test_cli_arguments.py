"""The positional arguments of push / pull / attach / discover: empty paths refused, help names."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.cli import run
from guard.errors import EXIT_USAGE


def test_push_refuses_an_empty_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`guard push "$DIR" ...` with DIR unset pushed the current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"w")
    assert run(["push", "", f"oci-layout:{tmp_path / 'store'}:v1"]) == EXIT_USAGE
    assert "MODEL_DIR: expected a path, found an empty string" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_pull_refuses_an_empty_directory(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`guard pull REF "$DIR"` with DIR unset pulled into the current directory."""
    store = tmp_path / "store"
    assert run(["push", str(model_dir), f"oci-layout:{store}:v1"]) == 0
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    capsys.readouterr()
    assert run(["pull", f"oci-layout:{store}:v1", " "]) == EXIT_USAGE
    assert "DIRECTORY: expected a path, found an empty string" in capsys.readouterr().err
    assert run(["pull", f"oci-layout:{store}:v1", ""]) == EXIT_USAGE
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "names"),
    [
        ("push", ["MODEL_DIR", "REF"]),
        ("pull", ["REF", "DIRECTORY"]),
        ("attach", ["REF"]),
        ("discover", ["REF"]),
    ],
)
def test_help_names_the_arguments_in_upper_case(
    command: str, names: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As sign / verify / attest / facts and the README synopses do."""
    monkeypatch.setenv("COLUMNS", "200")
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert [w.strip("{}[]") for w in usage.split()[3:]] == ["OPTIONS", *names]
    for lower in ("model_dir", "{target}", "{source}", "directory_text", "{directory}"):
        assert lower not in out
