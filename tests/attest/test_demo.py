from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from guard.attest.demo import step_attestations
from guard.demo import DemoStep, run_demo, step_keygen, step_make_model, step_sign, step_verify
from guard.errors import UsageError


def test_demo_step_on_a_directory(tmp_path: Path) -> None:
    out = io.StringIO()
    steps: list[DemoStep | str] = [step_make_model, step_keygen, step_sign, step_verify, step_attestations]
    ctx = run_demo(Console(file=out, width=200), tmp_path / "demo", steps=steps)
    facts = ctx.extras["model_facts"]
    assert {a["name"]: a["status"] for a in facts["attestations"]}["datasets"] == "present"
    assert facts["subject"]["kind"] == "directory"
    assert "guard-demo/reviews" in out.getvalue()


def test_full_demo_attaches_to_the_oci_artifact(tmp_path: Path) -> None:
    ctx = run_demo(Console(file=io.StringIO()), tmp_path / "demo")  # the STEPS list as shipped
    facts = ctx.extras["model_facts"]
    assert facts["subject"]["kind"] == "oci"
    assert facts["subject"]["digest"]["sha256"] == ctx.extras["oci_digest"].split(":", 1)[1]
    statuses = {a["name"]: a["status"] for a in facts["attestations"]}
    assert statuses["signature"] == statuses["sbom"] == statuses["datasets"] == "present"
    assert all(
        a["source"].startswith("referrer ")
        for a in facts["attestations"]
        if a["name"] in ("sbom", "datasets")
    )


def test_demo_step_in_a_relative_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `guard demo --workdir wd` crashed: a relative path has no file:// URI (the dataset's uri)
    monkeypatch.chdir(tmp_path)
    steps: list[DemoStep | str] = [step_make_model, step_keygen, step_sign, step_verify, step_attestations]
    ctx = run_demo(Console(file=io.StringIO(), width=200), Path("wd"), steps=steps)
    assert ctx.workdir == tmp_path / "wd"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="expected a directory, found a file"):
        run_demo(Console(file=io.StringIO()), Path("file"), steps=steps)
