"""`guard policy eval` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from guard.cli import run
from guard.policy.examples import CONFIG, example_input
from guard.policy.library import default_library_dir

DENIED = default_library_dir() / "tenancy/samples/denied/isolation--privileged_container.json"


def test_eval_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(example_input()))
    assert run(["policy", "eval", "--input", str(path)]) == 0
    assert capsys.readouterr().out.startswith("ALLOWED")


def test_eval_denied_exits_1_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "eval", "-i", str(DENIED)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("DENIED")
    assert "DENY   [critical] tenancy.isolation/privileged_container" in captured.out
    assert "controls: PSS-Baseline" in captured.out
    # the violations are listed once (on stdout); the error line sums them up
    assert "tenancy.isolation/privileged_container" in captured.err
    message = next(v for v in captured.out.splitlines() if "privileged_container:" in v).split(": ", 1)[1]
    assert message not in captured.err


@pytest.mark.parametrize("flag", [["--output", "json"], ["--json"]])  # --json as verify / facts take it
def test_eval_json_output(flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "eval", "-i", str(DENIED), *flag]) == 1
    decision = json.loads(capsys.readouterr().out)
    assert decision["allowed"] is False
    assert {v["rule"] for v in decision["violations"]} >= {"privileged_container"}


def test_eval_config_enforcement_warn_allows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "guard.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "policy": {"enforcement": {"tenancy": "warn"}}}))
    assert run(["policy", "eval", "-i", str(DENIED), "--config", str(config)]) == 0
    assert "WARN   [critical] tenancy.isolation/privileged_container" in capsys.readouterr().out


def test_eval_custom_policies_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "lib" / "demo"
    root.mkdir(parents=True)
    (root / "always.rego").write_text(
        'package guard.demo.always\n\ndeny contains {"rule": "no", "message": "never", "severity": "info"}\n'
    )
    assert run(["policy", "eval", "-i", str(DENIED), "--policies", str(tmp_path / "lib")]) == 1
    assert "demo.always/no: never" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "does not exist"), ("{not json", "expected JSON, found"), ("[1]", "expected a JSON object")],
)
def test_eval_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content)
    assert run(["policy", "eval", "-i", str(path)]) == 2
    assert expected in capsys.readouterr().err


def test_eval_refuses_an_input_outside_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # an empty or partial document must not be ALLOWED by accident
    path = tmp_path / "input.json"
    path.write_text("{}")
    assert run(["policy", "eval", "-i", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is not a policy input document" in err
    assert "$: 'request' is a required property" in err
    document = example_input()
    document["workload"]["containers"][0]["gpu"]["count"] = "two"
    path.write_text(json.dumps(document))
    assert run(["policy", "eval", "-i", str(path)]) == 2
    assert "$.workload.containers[0].gpu.count: 'two' is not of type 'integer'" in capsys.readouterr().err


def test_eval_enforcement_key_naming_no_policy_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a typo must not leave gpu.fit on the default action unnoticed
    config = tmp_path / "guard.yaml"
    config.write_text(
        yaml.safe_dump({"policy": {"defaultEnforcement": "warn", "enforcement": {"gpu.fitt": "deny"}}})
    )
    assert run(["policy", "eval", "-i", str(DENIED), "--config", str(config)]) == 2
    assert (
        "policy.enforcement: 'gpu.fitt' names no bundle or policy of the library" in capsys.readouterr().err
    )


def test_eval_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "guard.yaml"
    config.write_text("policy:\n  engine:\n    kind: opa\n")
    assert run(["policy", "eval", "-i", str(DENIED), "--config", str(config)]) == 2
    assert "policy.engine.opa.url: Field required" in capsys.readouterr().err


def test_eval_format_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "decision.json"
    assert run(["policy", "eval", "-i", str(DENIED), "--format", "json", "-o", str(out)]) == 1
    assert json.loads(out.read_text())["allowed"] is False
    assert capsys.readouterr().out == ""  # the decision went to the file
    text = tmp_path / "decision.txt"
    assert run(["policy", "eval", "-i", str(DENIED), "-o", str(text)]) == 1
    assert text.read_text().startswith("DENIED")
    assert run(["policy", "eval", "-i", str(DENIED), "--format", "json", "-o", "-"]) == 1
    assert json.loads(capsys.readouterr().out)["allowed"] is False


def test_eval_old_output_spelling_warns(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["policy", "eval", "-i", str(DENIED), "-o", "json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["allowed"] is False
    assert "-o json is deprecated" in captured.err and "--format json" in captured.err
    assert run(["policy", "eval", "-i", str(DENIED), "-o", "json", "--format", "text"]) == 2
    assert run(["policy", "eval", "-i", str(DENIED), "--format", "yaml"]) == 2
