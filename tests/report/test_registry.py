"""A report bundle kept in an OCI registry with the existing `guard push` (a ModelPack-typed
artifact with the bundle's signature attached), verified there and after `guard pull`."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from guard.cli import run
from guard.signing.keys import generate_keypair
from guard.testing.registry import RegistryServer

pytestmark = pytest.mark.registry


@pytest.fixture(autouse=True)
def _private_digest_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


def test_bundle_round_trips_through_a_registry(
    registry: RegistryServer, result_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = generate_keypair(tmp_path / "keys")
    bundle = tmp_path / "2026-11"
    args = ["report", str(result_file), "--bundle", str(bundle), "--formats", "html,json,csv,sarif",
            "--key", str(keys.private_key)]  # fmt: skip
    assert run(args) == 0
    target = f"oci://{registry.host}/evidence-{uuid.uuid4().hex[:8]}:2026-11"
    capsys.readouterr()
    assert run(["push", str(bundle), target, "--signature", str(bundle / "model.sig")]) == 0
    digest = capsys.readouterr().out.strip()
    assert digest.startswith("sha256:")
    assert run(["verify", target, "--key", str(keys.public_key)]) == 0
    other = generate_keypair(tmp_path / "other")
    assert run(["verify", target, "--key", str(other.public_key)]) == 1
    pulled = tmp_path / "pulled"
    capsys.readouterr()
    assert run(["pull", target, str(pulled), "--key", str(keys.public_key)]) == 0  # verified, then pulled
    assert capsys.readouterr().out.strip() == digest
    assert (pulled / "manifest.json").read_bytes() == (bundle / "manifest.json").read_bytes()
    assert (pulled / "report.html").read_bytes() == (bundle / "report.html").read_bytes()
