"""``--json`` on failure: every command prints one document on standard output, ``error`` (the
error's class) and ``reason`` (its message), with the documented exit code (json.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from guard.cli import run
from guard.commands.signing import VERIFY_KEYS
from guard.errors import EXIT_FAILED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_USAGE
from tests.cli.test_consistency import _command, _options

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer

CLOSED = "127.0.0.1:9"  # nothing listens there: a registry (or Prometheus) that does not answer
# the commands whose failure document is their own document (json.md), and what it says then
OWN_FIELDS: dict[tuple[str, ...], dict[str, Any]] = {
    ("verify",): {"verified": False, "target": None, "kind": None},
    ("demo",): {"complete": False, "allShown": False, "sections": None},
}


def _failed(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """Run ``guard ARGV``: its exit code, the one document on stdout (json.loads refuses
    anything more), and stderr."""
    capsys.readouterr()
    code = run(argv)
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert isinstance(document, dict), captured.out
    return code, document, captured.err


def _json_commands(command_paths: list[list[str]]) -> list[list[str]]:
    return [path for path in command_paths if path and "--json" in _options(_command(path))]


def _usage_error(path: list[str], kind: str) -> tuple[list[str], str] | None:
    """The arguments that make ``kind`` of click usage error for the command, and a word its
    message names; None when the command has nothing to get wrong that way."""
    params = _command(path).params
    if kind == "unknown-option":
        return [*path, "--json", "--no-such-option"], "--no-such-option"
    if kind == "bad-choice":
        for param in params:
            descriptor = getattr(param, "type_descriptor", None)
            if getattr(descriptor, "is_choice", False) and param.opts[0].startswith("--"):
                return [*path, "--json", param.opts[0], "not-a-choice"], "not-a-choice"
        return None
    required = [p for p in params if p.required]
    return ([*path, "--json"], "Missing") if required else None


@pytest.mark.parametrize("kind", ["unknown-option", "bad-choice", "missing-argument"])
def test_every_json_command_prints_a_usage_error_as_its_document(
    kind: str, command_paths: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    covered = []
    for path in _json_commands(command_paths):
        made = _usage_error(path, kind)
        if made is None:
            continue
        argv, said = made
        code, doc, err = _failed(argv, capsys)
        assert code == EXIT_USAGE, argv
        assert doc["error"] == "UsageError" and said in doc["reason"], (argv, doc)
        assert said in err  # the people's message is still there, on stderr
        for key, value in OWN_FIELDS.get(tuple(path), {}).items():
            assert doc[key] == value, (argv, key)
        if tuple(path) == ("verify",):
            assert list(doc) == list(VERIFY_KEYS)
        covered.append(" ".join(path))
    assert len(covered) >= {"unknown-option": 20, "bad-choice": 6, "missing-argument": 12}[kind], covered


def test_a_json_flag_taken_as_a_value_asks_for_no_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--identity --json`: the identity is the text "--json"; what click parses decides, not the words
    capsys.readouterr()
    assert run(["verify", str(tmp_path), "--identity", "--json"]) == EXIT_USAGE
    assert capsys.readouterr().out == ""


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    assert run(["keygen", "--out", str(tmp_path / "keys"), "--name", "k"]) == 0
    assert run(["keygen", "--out", str(tmp_path / "other"), "--name", "k"]) == 0
    return {
        "{key}": str(tmp_path / "keys" / "k.pem"),
        "{pub}": str(tmp_path / "keys" / "k.pub.pem"),
        "{other}": str(tmp_path / "other" / "k.pub.pem"),
    }


@pytest.fixture
def names(tmp_path: Path, keys: dict[str, str]) -> dict[str, str]:
    """What the arguments below name: a signed model, its SBOM, a bad config, a manifest..."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["Tiny"]}')
    bom = tmp_path / "bom.json"
    assert run(["sbom", str(model), "-o", str(bom)]) == 0
    assert run(["sign", str(model), "--key", keys["{key}"], "--no-cache"]) == 0
    (tmp_path / "bad.yaml").write_text("bogusKey: 1\n")
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\n"
        "spec:\n  containers: [{name: c, image: registry.example.com/app:latest}]\n"
    )
    (tmp_path / "not-a-result.json").write_text("{}")
    return {
        **keys,
        "{tmp}": str(tmp_path),
        "{model}": str(model),
        "{bom}": str(bom),
        "{bad-config}": str(tmp_path / "bad.yaml"),
        "{pod}": str(tmp_path / "pod.yaml"),
        "{not-a-result}": str(tmp_path / "not-a-result.json"),
        "{layout}": f"oci-layout:{tmp_path / 'layout'}:v1",
        "{closed}": f"{CLOSED}/team/m:v1",
    }


def _argv(argv: list[str], names: dict[str, str]) -> list[str]:
    out = []
    for given in argv:
        arg = given
        for name, value in names.items():
            arg = arg.replace(name, value)
        out.append(arg)
    return [*out, "--json"]


# (arguments, exit code, error class, a word of the reason)
CASES = {
    # guard's usage and configuration errors (2)
    "sign-no-model": (["sign", "{tmp}/none", "--key", "{key}"], EXIT_USAGE, "ModelDirectoryError", "none"),
    "sbom-no-model": (["sbom", "{tmp}/none", "-o", "{tmp}/b.json"], EXIT_USAGE, "ModelDirectoryError",
                      "none"),
    "keygen-out-is-a-file": (["keygen", "--out", "{key}"], EXIT_USAGE, "UsageError", "--out"),
    "attest-no-trust-option": (["attest", "{model}", "--sbom", "{bom}", "-o", "{tmp}/a.json"], EXIT_USAGE,
                               "UsageError", "--key"),
    "attach-nothing": (["attach", "{layout}"], EXIT_USAGE, "UsageError", "nothing to attach"),
    "pull-missing-layout": (["pull", "{layout}", "{tmp}/out"], EXIT_USAGE, "LayoutNotFoundError", "layout"),
    "check-bad-config": (["check", "-f", "{pod}", "--config", "{bad-config}"], EXIT_USAGE, "ConfigError",
                         "bogusKey"),
    "pin-bad-config": (["pin", "{pod}", "--config", "{bad-config}"], EXIT_USAGE, "ConfigError", "bogusKey"),
    "scan-bad-config": (["scan", "--config", "{bad-config}", "--snapshot", "{pod}"], EXIT_USAGE,
                        "ConfigError", "bogusKey"),
    "scan-two-sources": (["scan", "--snapshot", "{pod}", "--in-cluster"], EXIT_USAGE, "UsageError",
                         "one source"),
    "scan-merge-not-a-result": (["scan", "merge", "{not-a-result}"], EXIT_USAGE, "UsageError", "scan result"),
    "scan-json-before-merge": (["scan", "--json", "merge", "{not-a-result}"], EXIT_USAGE, "UsageError",
                               "scan result"),
    "report-not-a-result": (["report", "{not-a-result}", "--format", "md", "-o", "{tmp}/r.md"], EXIT_USAGE,
                            "ReportError", "apiVersion"),
    "policy-eval-no-input": (["policy", "eval", "-i", "{tmp}/none.json"], EXIT_USAGE, "UsageError",
                             "--input"),
    "policy-test-none-matched": (["policy", "test", "--run", "no_such_test"], EXIT_USAGE, "UsageError",
                                 "no tests matched"),
    # verification failures (1)
    "verify-other-key": (["verify", "{model}", "--key", "{other}"], EXIT_FAILED, None, ""),
    # a registry (or Prometheus) that does not answer (3)
    "sign-unreachable": (["sign", "{closed}", "--key", "{key}"], EXIT_INFRA, "RegistryError", CLOSED),
    "push-unreachable": (["push", "{model}", "{closed}"], EXIT_INFRA, "RegistryError", CLOSED),
    "pull-unreachable": (["pull", "{closed}", "{tmp}/out"], EXIT_INFRA, "RegistryError", CLOSED),
    "attach-unreachable": (["attach", "{closed}", "--sbom", "{bom}"], EXIT_INFRA, "RegistryError", CLOSED),
    "discover-unreachable": (["discover", "{closed}"], EXIT_INFRA, "RegistryError", CLOSED),
    "download-unreachable": (["download", "sbom", "{closed}", "-o", "{tmp}/d.json"], EXIT_INFRA,
                             "RegistryError", CLOSED),
    "facts-unreachable": (["facts", "{closed}", "--key", "{pub}"], EXIT_INFRA, "RegistryError", CLOSED),
    "attest-attach-unreachable": (["attest", "{closed}", "--sbom", "{bom}", "--key", "{key}", "-o",
                                   "{tmp}/a.json", "--attach"], EXIT_INFRA, "RegistryError", CLOSED),
    "verify-unreachable": (["verify", "{closed}", "--key", "{pub}"], EXIT_INFRA, "RegistryError", CLOSED),
    "energy-unreachable": (["energy", "--prometheus", f"http://{CLOSED}", "--period", "2026-11"], EXIT_INFRA,
                           "PrometheusError", CLOSED),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_failing_command_prints_its_failure_document(
    case: str, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv, exit_code, error, said = CASES[case]
    code, doc, _ = _failed(_argv(argv, names), capsys)
    assert code == exit_code, doc
    if error is not None:
        assert doc["error"] == error, doc
    else:  # a verification failure: one of VerificationError's classes, which one is the verifier's
        assert doc["error"].endswith(("Error", "Mismatch", "Certificate")), doc
    assert said in doc["reason"] and doc["reason"], doc
    for key, value in OWN_FIELDS.get((argv[0],), {}).items():
        if key in ("verified", "complete"):
            assert doc[key] == value


@pytest.mark.registry
def test_registry_answers_that_fail_print_the_document(
    registry: RegistryServer, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"{registry.host}/tests/json-failure:v1"
    assert run(["push", names["{model}"], target, "--signature", f"{names['{model}']}/model.sig"]) == 0
    names = {**names, "{target}": target}
    code, doc, _ = _failed(_argv(["pull", "{target}", "{tmp}/pulled", "--key", "{other}"], names), capsys)
    assert code == EXIT_FAILED and doc["error"] and doc["reason"]
    missing = f"{registry.host}/tests/json-failure-none:v1"
    code, doc, _ = _failed(_argv(["discover", missing], names), capsys)
    assert code == EXIT_INFRA and doc["error"] == "NotFoundError", doc
    code, doc, _ = _failed(
        _argv(["download", "attestation", "{target}", "-o", "{tmp}/a.json"], names), capsys
    )
    assert code == EXIT_FAILED and doc["error"] == "NothingAttachedError", doc


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["pin", "{pod}", "--check", "--all"], "pins"),
        (["facts", "{model}", "--key", "{pub}", "--require", "sbom"], "subject"),
        (["check", "-f", "{pod}", "--offline"], "objects"),
    ],
    ids=["pin-check", "facts-require", "check-denied"],
)
def test_a_verdict_printed_before_exit_1_is_the_only_document(
    argv: list[str], key: str, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, _ = _failed(_argv(argv, names), capsys)  # json.loads: one document, no failure one after
    assert code == EXIT_FAILED and key in doc and "error" not in doc


def test_policy_eval_denied_prints_the_decision_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    denied = sorted((Path(__file__).parents[2] / "policies").glob("*/samples/denied/*.json"))[0]
    code, doc, err = _failed(["policy", "eval", "-i", str(denied), "--json"], capsys)
    assert code == EXIT_FAILED and doc["allowed"] is False and doc["violations"]
    assert "denied by" in err
    # the decision in a file, standard output empty but for the failure document
    written = tmp_path / "decision.json"
    code, doc, _ = _failed(["policy", "eval", "-i", str(denied), "--json", "-o", str(written)], capsys)
    assert code == EXIT_FAILED and doc["error"] == "PolicyViolation" and str(written) in doc["reason"]
    assert json.loads(written.read_text())["allowed"] is False


@pytest.mark.parametrize(
    ("raised", "code", "error", "reason"),
    [
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "KeyboardInterrupt", "interrupted"),
        (PermissionError(13, "Denied"), EXIT_INFRA, "PermissionError", "[Errno 13] Denied"),
    ],
    ids=["ctrl-c", "os-error"],
)
def test_an_interrupt_or_an_os_error_prints_the_document(
    raised: BaseException,
    code: int,
    error: str,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import guard.commands.version
    import guard.demo

    def interrupted(*args: object, **kwargs: object) -> Any:
        raise raised

    monkeypatch.setattr(guard.commands.version, "version_info", interrupted)
    monkeypatch.setattr(guard.demo, "run_demo", interrupted)
    assert _failed(["version", "--json"], capsys)[:2] == (code, {"error": error, "reason": reason})
    exit_code, doc, _ = _failed(["demo", "--json"], capsys)
    assert exit_code == code and doc["complete"] is False and doc["error"] == error


def test_a_bug_prints_the_document_before_its_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import guard.commands.version

    def broken() -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(guard.commands.version, "version_info", broken)
    capsys.readouterr()
    with pytest.raises(RuntimeError, match="a bug"):
        run(["version", "--json"])
    assert json.loads(capsys.readouterr().out) == {"error": "RuntimeError", "reason": "a bug"}


def test_success_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    from guard.commands.version import version_info

    capsys.readouterr()
    assert run(["version", "--json"]) == 0
    assert capsys.readouterr().out == json.dumps(version_info(), indent=2) + "\n"
