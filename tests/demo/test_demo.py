"""`guard demo` end to end: with docker-registry and without it (the local mirror), its exit code
and final line, re-runs on the same work directory, and a step that misbehaves failing it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from guard.cli import run
from guard.demo import DemoContext, DemoFailed, DemoStep, run_demo
from guard.demo.publish import registry_unavailable
from guard.demo.signing import step_keygen, step_make_model, step_sign, step_tamper, step_verify
from guard.errors import UsageError
from guard.signing import KeySigner, sign_model

SIGNING: list[DemoStep | str] = [step_make_model, step_keygen, step_sign, step_verify, step_tamper]


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


BLOCK_TESTING = """\
import importlib.abc
import sys


class _NoTesting(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "guard.testing" or name.startswith("guard.testing."):
            raise ModuleNotFoundError(f"No module named {name!r} (a runtime-only install)", name=name)
        return None


sys.meta_path.insert(0, _NoTesting())
"""


def test_make_demo_on_a_runtime_only_install_without_docker_registry(tmp_path: Path) -> None:
    """What `make demo` runs on a fresh machine: the `guard` process, docker-registry not on PATH
    and guard.testing not importable (in this process, every guard command and guard serve)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCK_TESTING)
    pythonpath = os.pathsep.join(p for p in (str(blocker), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PATH": str(empty), "COLUMNS": "200", "PYTHONPATH": pythonpath}
    workdir = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-c", "from guard.cli import main; main()", "demo", "--workdir", str(workdir)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    final = _last_line(out)
    assert final.startswith("demo complete: every step behaved as shown"), final
    assert "local OCI layout mirror, as guard.testing (the registry fixture" in final
    assert "is not installed" in final
    assert "$ guard push webhook-models/signed oci-layout:mirror/demo/signed:v1" in out
    assert out.count("✓ allowed; verified registry.guard-demo.invalid/demo/signed") == 2
    assert "files changed (1): model.safetensors" in out  # the tampered model, denied
    assert "no signature is attached" in out
    assert "demo/absent is not in the mirror of registry.guard-demo.invalid" in out
    assert "(dry run: nothing was created)" in out
    assert "files changed (1): config.json" in out
    assert '"decision":"denied"' in (workdir / "webhook.log").read_text()
    # read from guard serve's --metrics-port (the admission port serves no /metrics)
    assert 'verification cache: {cache="verification",result="' in out


@pytest.mark.registry
def test_demo_with_docker_registry(
    tmp_path: Path, registry: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert registry_unavailable() is None
    assert run(["demo", "--workdir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "models in docker-registry on 127.0.0.1:" in out
    assert "✓ allowed; verified 127.0.0.1:" in out
    assert "does not exist in its registry" in out  # demo/absent
    assert 'verification cache: {cache="verification",result="' in out
    final = _last_line(out)
    assert final.startswith("demo complete: every step behaved as shown"), final
    assert "Note:" not in final


def test_without_docker_registry_on_path_the_reason_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert registry_unavailable() == "docker-registry is not on PATH (apt-get install docker-registry)"


def test_without_guard_testing_the_reason_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "guard.testing.registry", None)  # a runtime-only install
    reason = registry_unavailable()
    assert reason is not None and "guard.testing" in reason and "not installed" in reason


def test_rerun_on_the_same_workdir_and_echoed_commands_are_run(tmp_path: Path) -> None:
    workdir = tmp_path / "w"
    for _ in range(2):
        out = io.StringIO()
        ctx = run_demo(Console(file=out, width=200), workdir, steps=list(SIGNING))
        text = out.getvalue()
        assert _last_line(text).startswith("demo complete")
    assert (workdir / ctx.signature).is_file()
    # the echoed commands are the ones run: run again by hand, they answer the same
    line = next(li for li in text.splitlines() if li.startswith("$ guard verify tiny-sentiment"))
    argv = line.removeprefix("$ guard ").split()
    cwd = Path.cwd()
    try:
        os.chdir(workdir)
        assert run(argv) == 0
    finally:
        os.chdir(cwd)


def test_a_directory_the_demo_did_not_make_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(UsageError, match="found other files; they are left alone"):
        run_demo(Console(file=io.StringIO()), tmp_path, steps=list(SIGNING))
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    (tmp_path / "mine.txt").unlink()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="expected a directory, found a file"):
        run_demo(Console(file=io.StringIO()), tmp_path / "file", steps=list(SIGNING))


def _sign_the_tampered_model(ctx: DemoContext) -> None:
    """Sign the model as step_tamper will edit it: its edit then goes unnoticed."""
    config_path = ctx.path(ctx.model) / "config.json"
    text = config_path.read_text()
    config = json.loads(text)
    config["num_labels"] = 3
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    sign_model(
        ctx.path(ctx.model),
        KeySigner.from_file(ctx.path(ctx.private_key)),
        signature_path=ctx.path(ctx.signature),
    )
    config_path.write_text(text)


def test_a_step_that_does_not_behave_as_shown_fails_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps: list[DemoStep | str] = [step_make_model, step_keygen, _sign_the_tampered_model, step_tamper]
    with pytest.raises(DemoFailed, match=r"demo failed in section 3: .*tampering went unnoticed"):
        run_demo(Console(file=io.StringIO()), tmp_path / "w", steps=steps)


def test_the_cli_exits_1_and_its_last_line_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import guard.demo.run

    monkeypatch.setattr(
        guard.demo.run, "SECTIONS", [step_make_model, step_keygen, _sign_the_tampered_model, step_tamper]
    )
    assert run(["demo", "--workdir", str(tmp_path / "w")]) == 1
    captured = capsys.readouterr()
    assert "demo complete" not in captured.out
    assert _last_line(captured.err).startswith("verification failed: demo failed in section 3")


def test_attestations_for_a_model_directory(tmp_path: Path) -> None:
    from guard.demo.attest import step_attestations

    ctx = run_demo(
        Console(file=io.StringIO(), width=200), tmp_path / "w", steps=[*SIGNING, step_attestations]
    )
    facts = ctx.extras["model_facts"]
    assert facts["subject"]["kind"] == "directory"
    assert {a["name"]: a["status"] for a in facts["attestations"]}["datasets"] == "present"


def test_policy_section_prints_decisions_with_reasons(tmp_path: Path) -> None:
    from guard.demo.policy import SCENARIOS, step_policies

    console = Console(record=True, width=200)
    run_demo(console, tmp_path / "w", steps=[step_policies])
    text = console.export_text()
    assert text.count("✗ denied (exit 1)") == sum(not allowed for *_, allowed in SCENARIOS)
    assert "gpu.fit/model_exceeds_gpu_memory" in text
    assert "controls: NIST-AI-RMF MEASURE-2.12" in text
    assert len(list((tmp_path / "w" / "policy-inputs").glob("*.json"))) == len(SCENARIOS)


def test_json_prints_the_verdict_on_stdout_and_the_narrative_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import guard.demo.run

    monkeypatch.setattr(guard.demo.run, "SECTIONS", list(SIGNING))
    capsys.readouterr()
    assert run(["demo", "--workdir", str(tmp_path / "w"), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["complete"] is True and doc["allShown"] is True and doc["error"] is None
    assert doc["sections"] >= 1 and doc["workdir"] == str((tmp_path / "w").resolve())
    assert "$ guard sign" in captured.err and _last_line(captured.err).startswith("demo complete")

    monkeypatch.setattr(
        guard.demo.run, "SECTIONS", [step_make_model, step_keygen, _sign_the_tampered_model, step_tamper]
    )
    assert run(["demo", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["complete"] is False and doc["error"] == "DemoFailed"
    assert doc["reason"].startswith("demo failed in section 3") and doc["workdir"] is None
