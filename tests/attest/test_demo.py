from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from guard.attest.demo import step_attestations
from guard.cli import run
from guard.demo import STEPS, DemoContext, run_demo


def _signing_steps() -> list:  # type: ignore[type-arg]
    return [s for s in STEPS if s != "guard.attest.demo:step_attestations"]


def test_demo_step_on_a_directory(tmp_path: Path) -> None:
    out = io.StringIO()
    ctx = run_demo(
        Console(file=out, width=200), tmp_path / "demo", steps=[*_signing_steps(), step_attestations]
    )
    facts = ctx.extras["model_facts"]
    assert {a["name"]: a["status"] for a in facts["attestations"]}["datasets"] == "present"
    assert facts["subject"]["kind"] == "directory"
    assert "guard-demo/reviews" in out.getvalue()


def test_demo_step_attaches_to_the_oci_artifact(tmp_path: Path) -> None:
    def push(ctx: DemoContext) -> None:
        ref = f"oci-layout:{ctx.workdir / 'layout'}:v1"
        assert run(["push", str(ctx.model_dir), ref, "--signature", str(ctx.signature)]) == 0
        ctx.extras["oci_reference"] = ref

    ctx = run_demo(
        Console(file=io.StringIO()), tmp_path / "demo", steps=[*_signing_steps(), push, step_attestations]
    )
    facts = ctx.extras["model_facts"]
    assert facts["subject"]["kind"] == "oci"
    statuses = {a["name"]: a["status"] for a in facts["attestations"]}
    assert statuses["signature"] == statuses["sbom"] == statuses["datasets"] == "present"
    assert all(
        a["source"].startswith("referrer ")
        for a in facts["attestations"]
        if a["name"] in ("sbom", "datasets")
    )
