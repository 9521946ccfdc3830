"""One CLI: ``--json`` on every command, ``-o -`` is standard output, choices shown as choices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

from guard.cli import app, run

# the documented exception (docs/reference/json.md): a server, which prints logs, has no result document
NO_JSON = {("serve",)}


def _command(path: list[str]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _options(command: Any) -> dict[str, Any]:
    return {opt: p for p in command.params if p.param_type_name == "option" for opt in p.opts}


def test_every_command_that_runs_takes_json(command_paths: list[list[str]]) -> None:
    missing = []
    for path in command_paths:
        command = _command(path)
        runs = not getattr(command, "commands", None) or getattr(command, "invoke_without_command", False)
        if path and runs and tuple(path) not in NO_JSON and "--json" not in _options(command):
            missing.append(" ".join(path))
    assert missing == []


def test_fail_on_shows_its_choices_everywhere(command_paths: list[list[str]]) -> None:
    for path in command_paths:
        option = _options(_command(path)).get("--fail-on")
        if option is not None:
            annotation = str(option.type_descriptor.annotation)
            assert "Literal" in annotation, (path, annotation)


def _model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    return model


def test_sbom_and_attest_write_standard_output_for_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = _model(tmp_path)
    assert run(["keygen", "--out", str(tmp_path), "--name", "k"]) == 0
    capsys.readouterr()
    assert run(["sbom", str(model), "-o", "-"]) == 0
    bom = json.loads(capsys.readouterr().out)
    assert bom["bomFormat"] == "CycloneDX" and not (tmp_path / "-").exists()
    (tmp_path / "bom.json").write_text(json.dumps(bom))
    argv = ["attest", str(model), "--sbom", "bom.json", "--key", str(tmp_path / "k.pem"), "-o", "-"]
    assert run(argv) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["sbom", "{model}", "-o", "-", "--json"],
        ["attest", "{model}", "--sbom", "{model}/config.json", "--key", "k.pem", "-o", "-", "--json"],
        ["attest", "oci-layout:layout:v1", "--sbom", "x.json", "--key", "k.pem", "-o", "-", "--attach"],
    ],
    ids=["sbom-json", "attest-json", "attest-attach"],
)
def test_dash_output_with_json_or_attach_is_a_usage_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = _model(tmp_path)
    capsys.readouterr()
    assert run([a.replace("{model}", str(model)) for a in argv]) == 2
    captured = capsys.readouterr()
    assert "-o -" in captured.err
    if "--json" in argv:  # the failure document, and nothing else
        failed = json.loads(captured.out)
        assert failed["error"] == "UsageError" and "-o -" in failed["reason"]
    else:
        assert captured.out == ""
    assert not (tmp_path / "-").exists()


def test_scan_and_merge_accept_json_and_print_the_same_document(tmp_path: Path) -> None:
    from tests.scan.test_snapshot import config_path, deploy, write

    cfg, snap = str(config_path(tmp_path)), str(write(tmp_path, deploy("web")))
    plain, as_json, merged = tmp_path / "plain.json", tmp_path / "json.json", tmp_path / "merged.json"
    assert run(["scan", "--config", cfg, "--snapshot", snap, "-o", str(plain), "--fail-on", "critical"]) == 0
    argv = [
        "scan",
        "--config",
        cfg,
        "--snapshot",
        snap,
        "-o",
        str(as_json),
        "--fail-on",
        "critical",
        "--json",
    ]
    assert run(argv) == 0
    assert json.loads(as_json.read_text())["workloads"] == json.loads(plain.read_text())["workloads"]
    argv = ["scan", "merge", str(plain), "-o", str(merged), "--fail-on", "critical", "--json"]
    assert run(argv) == 0
    assert json.loads(merged.read_text())["workloads"] == json.loads(plain.read_text())["workloads"]
    assert run(["scan", "merge", str(plain), "--fail-on", "urgent"]) == 2
