"""`guard demo`: runs end to end, catches the tampering, and takes steps from other modules."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from guard import demo
from guard.cli import run
from guard.signing.model import sign_model
from guard.signing.sign_key import KeySigner

# The signing part of the demo; other capabilities append their steps after it.
SIGNING_STEPS: list[demo.DemoStep | str] = [
    demo.step_make_model,
    demo.step_keygen,
    demo.step_sign,
    demo.step_verify,
    demo.step_tamper,
]


def test_demo_command_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """The whole `guard demo` (what `make demo` runs), every capability's steps included."""
    assert demo.STEPS[: len(SIGNING_STEPS)] == SIGNING_STEPS
    assert run(["demo"]) == 0
    out = capsys.readouterr().out
    assert "files changed (1): config.json" in out
    assert "demo complete" in out


def test_demo_keeps_workdir_and_model_card(tmp_path: Path) -> None:
    ctx = demo.run_demo(Console(file=io.StringIO()), tmp_path / "w", steps=SIGNING_STEPS)
    assert ctx.signature.is_file()
    card = (ctx.model_dir / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n")
    header_len = int.from_bytes((ctx.model_dir / "model.safetensors").read_bytes()[:8], "little")
    assert header_len % 8 == 0
    assert ctx.extras["key_fingerprint"].startswith("sha256:")


def extra_step(ctx: demo.DemoContext) -> None:  # used below as "module:function"
    ctx.extras["seen"] = sorted(p.name for p in ctx.model_dir.iterdir())


def test_steps_can_be_module_function_strings(tmp_path: Path) -> None:
    steps = [*SIGNING_STEPS, f"{__name__}:extra_step"]
    ctx = demo.run_demo(Console(file=io.StringIO()), tmp_path, steps=steps)
    assert ctx.extras["seen"] == ["README.md", "config.json", "model.safetensors", "tokenizer.json"]


def _sign_the_tampered_model(ctx: demo.DemoContext) -> None:
    """Sign the model as step_tamper will edit it: its edit then goes unnoticed."""
    config_path = ctx.model_dir / "config.json"
    text = config_path.read_text()
    config = json.loads(text)
    config["num_labels"] = 3
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    sign_model(ctx.model_dir, KeySigner.from_file(ctx.private_key), signature_path=ctx.signature)
    config_path.write_text(text)


def test_unnoticed_tampering_fails_the_demo(tmp_path: Path) -> None:
    steps: list[demo.DemoStep | str] = [
        demo.step_make_model,
        demo.step_keygen,
        _sign_the_tampered_model,
        demo.step_tamper,
    ]
    with pytest.raises(demo.DemoFailed, match="tampering went unnoticed"):
        demo.run_demo(Console(file=io.StringIO()), tmp_path, steps=steps)
