"""The webhook step of `guard demo`: guard serve over HTTPS, sample workloads, decisions shown."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from guard.demo import run_demo, step_keygen, step_make_model


def _run(tmp_path: Path) -> str:
    out = io.StringIO()
    run_demo(
        Console(file=out, width=240, soft_wrap=True),
        tmp_path / "demo",
        steps=[step_make_model, step_keygen, "guard.admission.demo:step_webhook"],
    )
    return out.getvalue()


@pytest.mark.registry
def test_webhook_step_against_a_real_registry(tmp_path: Path, registry: object) -> None:
    text = _run(tmp_path)
    assert "models in docker-registry on 127.0.0.1:" in text
    assert "✓ allowed; verified" in text
    assert "files changed (1): model.safetensors" in text
    assert "no signature is attached" in text
    assert "(dry run: nothing was created)" in text
    assert '"decision":"denied"' in (tmp_path / "demo" / "webhook.log").read_text()


def test_webhook_step_without_a_registry_fails_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import guard.testing.registry

    monkeypatch.setattr(guard.testing.registry, "registry_available", lambda **_: "no registry here (test)")
    text = _run(tmp_path)
    assert "no registry here (test)" in text
    assert "✓ allowed" not in text
    assert text.count("✗ denied") == 5
    assert "fails closed" in text
