"""``guard push`` refuses what could never verify in a registry, before uploading anything: a
shards or blake3 model signature (admission checks signatures against layer digests) and an
attestation whose subject is the model directory instead of the OCI manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.cli import run
from guard.oci.layout import LayoutStore
from guard.oci.push_checks import subject_digests
from guard.oci.referrers import load_attachment


def _nothing_pushed(layout: Path) -> bool:
    if not layout.exists():
        return True
    manifests: list[object] = json.loads((layout / "index.json").read_text())["manifests"]
    return manifests == []


@pytest.mark.parametrize("extra", [["--shard-size", "1M"], ["--hash", "blake3"]])
def test_a_signature_oci_cannot_check_is_refused_before_upload(
    model_dir: Path,
    keypair: tuple[Path, Path],
    tmp_path: Path,
    extra: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    private, _ = keypair
    assert run(["sign", str(model_dir), "--key", str(private), "--no-cache", *extra]) == 0
    layout = tmp_path / "layout"
    code = run(
        ["push", str(model_dir), f"oci-layout:{layout}:v1", "--signature", str(model_dir / "model.sig")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "would deny this model" in err and "guard sign MODEL_DIR" in err
    assert _nothing_pushed(layout)


def test_a_files_sha256_signature_still_pushes(
    model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keypair
    assert run(["sign", str(model_dir), "--key", str(private), "--no-cache"]) == 0
    layout = tmp_path / "layout"
    ref = f"oci-layout:{layout}:v1"
    assert run(["push", str(model_dir), ref, "--signature", str(model_dir / "model.sig")]) == 0
    assert run(["verify", ref, "--key", str(public)]) == 0


def test_an_attestation_of_the_directory_is_refused_with_the_command(
    keypair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _ = keypair
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"model_type": "llama"}')
    (model_dir / "weights.bin").write_bytes(b"weights " * 64)
    bom, att = tmp_path / "bom.json", tmp_path / "bom.att.json"
    assert run(["sbom", str(model_dir), "-o", str(bom)]) == 0
    assert run(["attest", str(model_dir), "--sbom", str(bom), "--key", str(private), "-o", str(att)]) == 0
    assert subject_digests(load_attachment("attestation", att))  # it names the directory's OMS digest
    layout = tmp_path / "layout"
    ref = f"oci-layout:{layout}:v1"
    capsys.readouterr()
    assert run(["push", str(model_dir), ref, "--attestation", str(att)]) == 2
    err = capsys.readouterr().err
    assert "subject is the model directory (OMS digest sha256:" in err
    assert f"guard attest {ref}" in err
    assert _nothing_pushed(layout)
    # the command it names works: push, attest the artifact, attach
    assert run(["push", str(model_dir), ref]) == 0
    bound = tmp_path / "bound.att.json"
    assert run(["attest", ref, "--sbom", str(bom), "--key", str(private), "-o", str(bound)]) == 0
    digest = LayoutStore(layout).resolve("v1").digest
    assert subject_digests(load_attachment("attestation", bound)) == [digest.split(":", 1)[1]]
    assert run(["attach", ref, "--attestation", str(bound)]) == 0


def test_an_attestation_of_another_digest_is_not_attached(
    model_dir: Path, keypair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, _ = keypair
    other = tmp_path / "other"
    other.mkdir()
    (other / "weights.bin").write_bytes(b"another model")
    bom, att = tmp_path / "bom.json", tmp_path / "other.att.json"
    assert run(["sbom", str(other), "-o", str(bom)]) == 0
    assert run(["attest", str(other), "--sbom", str(bom), "--key", str(private), "-o", str(att)]) == 0
    layout = tmp_path / "layout"
    capsys.readouterr()
    assert run(["push", str(model_dir), f"oci-layout:{layout}:v1", "--attestation", str(att)]) == 2
    assert "not attaching other.att.json" in capsys.readouterr().err
    assert LayoutStore(layout).referrers(LayoutStore(layout).resolve("v1").digest) == []
