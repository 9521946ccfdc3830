"""Attestations of OCI artifacts: subject = manifest digest, attached as referrers, found again by
``guard facts``; run against an OCI layout and a real registry (Debian's docker-registry)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from guard.attest.specs import load_spec_file
from guard.cli import run
from guard.signing import KeySigner, sign_model


@pytest.fixture(params=["layout", "registry"])
def base(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "layout":
        return f"oci-layout:{tmp_path / 'layout'}"
    registry = request.getfixturevalue("registry")
    request.applymarker(pytest.mark.registry)
    return f"oci://{registry.host}/attest-{uuid.uuid4().hex[:8]}"


def test_attest_attach_and_facts_of_an_oci_artifact(
    base: str,
    model_dir: Path,
    tmp_path: Path,
    keys: tuple[Path, Path],
    other_keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    private, public = keys
    sign_model(model_dir, KeySigner.from_file(private))
    target = f"{base}:v1"
    assert run(["push", str(model_dir), target, "--signature", str(model_dir / "model.sig")]) == 0
    datasets = tmp_path / "datasets.json"
    datasets.write_text(json.dumps(load_spec_file("dataset-provenance/v1", "example.json")))
    bom = tmp_path / "bom.json"
    assert run(["sbom", str(model_dir), "-o", str(bom)]) == 0
    # A valid dataset attestation (ours), an SBOM attestation signed by an untrusted key.
    assert (
        run(
            [
                "attest",
                target,
                "--datasets",
                str(datasets),
                "--key",
                str(private),
                "-o",
                str(tmp_path / "ds.att.json"),
                "--attach",
            ]
        )
        == 0
    )
    assert (
        run(
            [
                "attest",
                target,
                "--sbom",
                str(bom),
                "--key",
                str(other_keys[0]),
                "-o",
                str(tmp_path / "bom.att.json"),
                "--attach",
            ]
        )
        == 0
    )
    # A directory attestation (other subject) attached by hand to the artifact.
    assert (
        run(
            [
                "attest",
                str(model_dir),
                "--provenance",
                str(_slsa(tmp_path)),
                "--key",
                str(private),
                "-o",
                str(tmp_path / "dir.att.json"),
            ]
        )
        == 0
    )
    assert run(["attach", target, "--attestation", str(tmp_path / "dir.att.json")]) == 0
    # An unsigned SBOM attached as is: listed as invalid, never counted.
    assert run(["attach", target, "--sbom", str(bom)]) == 0
    capsys.readouterr()
    assert run(["facts", target, "--key", str(public), "--json"]) == 0
    facts: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert facts["subject"]["kind"] == "oci"
    assert facts["signers"] and facts["signers"][0]["method"] == "key"
    status = sorted((a["name"], a["status"]) for a in facts["attestations"])
    assert status == sorted(
        [
            ("signature", "present"),
            ("datasets", "present"),
            ("sbom", "invalid"),
            ("sbom", "invalid"),
            ("sbom", "missing"),
            ("provenance", "invalid"),
            ("provenance", "missing"),
        ]
    )
    reasons = {a["name"]: a["reason"] for a in facts["attestations"] if a["status"] == "invalid"}
    assert "another model" in reasons["provenance"]
    sbom_reasons = [
        a["reason"] for a in facts["attestations"] if a["name"] == "sbom" and a["status"] == "invalid"
    ]
    assert any("unsigned SBOM" in r for r in sbom_reasons)
    assert any("signature" in r.lower() or "verif" in r.lower() for r in sbom_reasons if "unsigned" not in r)
    assert all(
        a["source"].startswith("referrer sha256:")
        for a in facts["attestations"]
        if a["name"] in ("datasets", "sbom") and a["status"] != "missing"
    )
    assert {d["name"] for d in facts["datasets"]} == {"slimpajama-627b", "internal-support-chats"}
    assert facts["provenance"]["builder"] is None


def _slsa(tmp_path: Path) -> Path:
    path = tmp_path / "slsa.json"
    path.write_text(json.dumps(load_spec_file("slsa-provenance/v1", "example.json")))
    return path


def test_attach_attaches_the_bundle_signed_not_what_the_output_file_holds_later(
    model_dir: Path,
    tmp_path: Path,
    keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """-o in a shared directory: someone replaces the file between guard's write and its attach.
    What is attached must be the bundle guard signed, not their file."""
    import guard.signing.model as model_module

    private, _ = keys
    target = f"oci-layout:{tmp_path / 'layout'}:v1"
    assert run(["push", str(model_dir), target]) == 0
    datasets = tmp_path / "datasets.json"
    datasets.write_text(json.dumps(load_spec_file("dataset-provenance/v1", "example.json")))
    output = tmp_path / "shared" / "ds.att.json"
    output.parent.mkdir()
    forged = b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": {}}'
    real_write = model_module.write_atomic
    signed: list[bytes] = []

    def replaced_after_write(path: Path, data: bytes, mode: int = 0o644) -> None:
        real_write(path, data, mode)
        signed.append(data)
        path.write_bytes(forged)  # the other writer

    monkeypatch.setattr(model_module, "write_atomic", replaced_after_write)
    args = ["attest", target, "--datasets", str(datasets), "--key", str(private), "-o", str(output)]
    assert run([*args, "--attach"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(model_module, "write_atomic", real_write)
    out = tmp_path / "downloaded.json"
    assert run(["download", "attestation", target, "-o", str(out)]) == 0
    assert out.read_bytes() == signed[0]
