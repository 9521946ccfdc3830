"""`guard verify --json`: one schema for a directory and an artifact, on success and failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guard.cli import run
from guard.commands.signing import VERIFY_KEYS


def _verify(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(["verify", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_directory_and_layout_documents_have_the_same_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["keygen", "--out", str(tmp_path), "--name", "k"]) == 0
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["X"]}')
    (model / "weights.bin").write_bytes(b"\0" * 64)
    assert run(["sign", str(model), "--key", str(tmp_path / "k.pem"), "--no-cache"]) == 0
    layout = f"oci-layout:{tmp_path / 'layout'}:v1"
    assert run(["push", str(model), layout, "--signature", str(model / "model.sig")]) == 0
    pub = str(tmp_path / "k.pub.pem")

    code, directory = _verify([str(model), "--key", pub], capsys)
    assert code == 0 and directory["verified"] is True and directory["kind"] == "directory"
    code, artifact = _verify([layout, "--key", pub], capsys)
    assert code == 0 and artifact["verified"] is True and artifact["kind"] == "oci"
    assert list(directory) == list(artifact) == list(VERIFY_KEYS)
    assert directory["signer"]["keyFingerprint"] == artifact["signer"]["keyFingerprint"]
    assert sorted(directory["files"]) == sorted(artifact["files"])

    (model / "weights.bin").write_bytes(b"\1" * 64)
    code, failed = _verify([str(model), "--key", pub], capsys)
    assert code == 1 and failed["verified"] is False
    assert failed["changed"] == ["weights.bin"] and failed["reason"]
    assert list(failed) == list(VERIFY_KEYS)

    other = tmp_path / "other"
    assert run(["keygen", "--out", str(other), "--name", "k"]) == 0
    code, failed_oci = _verify([layout, "--key", str(other / "k.pub.pem")], capsys)
    assert code == 1 and failed_oci["verified"] is False and failed_oci["error"]
    assert list(failed_oci) == list(VERIFY_KEYS)


def test_a_registry_that_does_not_answer_is_exit_3_with_the_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["keygen", "--out", str(tmp_path), "--name", "k"]) == 0
    code, doc = _verify(["127.0.0.1:9/team/m:v1", "--key", str(tmp_path / "k.pub.pem")], capsys)
    assert code == 3
    assert doc["verified"] is False and doc["target"] == "oci://127.0.0.1:9/team/m:v1"
    assert "127.0.0.1:9" in doc["reason"]


def test_keygen_push_pull_attach_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["keygen", "--out", str(tmp_path), "--name", "k", "--json"]) == 0
    key = json.loads(capsys.readouterr().out)
    assert key["publicKey"].endswith("k.pub.pem") and key["encrypted"] is False
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert run(["sign", str(model), "--key", key["privateKey"], "--no-cache"]) == 0
    layout = f"oci-layout:{tmp_path / 'layout'}:v1"
    capsys.readouterr()
    assert run(["push", str(model), layout, "--signature", str(model / "model.sig"), "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert pushed["digest"].startswith("sha256:") and pushed["attached"][0]["kind"] == "signature"
    out = tmp_path / "pulled"
    assert run(["pull", layout, str(out), "--key", key["publicKey"], "--json"]) == 0
    pulled = json.loads(capsys.readouterr().out)
    assert pulled["digest"] == pushed["digest"] and pulled["verified"] is True
    assert "config.json" in pulled["files"]
    bom = tmp_path / "bom.json"
    assert run(["sbom", str(model), "-o", str(bom)]) == 0
    capsys.readouterr()
    assert run(["attach", layout, "--sbom", str(bom), "--json"]) == 0
    attached = json.loads(capsys.readouterr().out)
    assert attached["subject"] == pushed["digest"] and attached["attached"][0]["kind"] == "sbom"


def test_sbom_attest_and_policy_test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keygen", "--out", str(tmp_path), "--name", "k"]) == 0
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    bom = tmp_path / "bom.json"
    capsys.readouterr()
    assert run(["sbom", str(model), "-o", str(bom), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == str(bom)
    att = tmp_path / "bom.att.json"
    argv = ["attest", str(model), "--sbom", str(bom), "--key", str(tmp_path / "k.pem"), "-o", str(att)]
    assert run([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["output"] == str(att) and doc["subject"]["digest"].startswith("sha256:")
    assert doc["attached"] is None
    assert run(["policy", "test", "--json", "--run", "mutable_tags"]) == 0
    tests = json.loads(capsys.readouterr().out)
    assert tests["failed"] == 0 and tests["passed"] == len(tests["results"]) > 0


@pytest.mark.parametrize(
    ("argv", "target", "said"),
    [
        (["{model}"], "{model}", "say whom to trust"),
        (["registry.example.com/m:v1", "--key", "{key}", "--signature", "s.sig"], "oci://", "--signature"),
        (["{model}", "--key", "{key}", "--insecure"], "{model}", "only apply to oci://"),
    ],
    ids=["no-trust", "signature-on-oci", "registry-option-on-a-directory"],
)
def test_a_usage_error_prints_the_document_too(
    argv: list[str], target: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["keygen", "--out", str(tmp_path), "--name", "k"]) == 0
    model = tmp_path / "model"
    model.mkdir()
    names = {"{model}": str(model), "{key}": str(tmp_path / "k.pub.pem")}
    code, doc = _verify([names.get(a, a) for a in argv], capsys)
    assert code == 2
    assert list(doc) == list(VERIFY_KEYS)
    assert doc["verified"] is False and doc["error"] == "UsageError" and said in doc["reason"]
    assert doc["target"].startswith(names.get(target, target))
