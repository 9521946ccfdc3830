"""``guard pull`` restores the model's signature beside the files (``guard verify DIR`` works
after a pull, offline), and ``guard download signature|attestation|sbom`` writes an attachment's
raw content and says whether it was verified: against the real docker-registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from guard.cli import run
from guard.signing.keys import generate_keypair

if TYPE_CHECKING:
    from guard.testing.registry import RegistryServer

pytestmark = pytest.mark.registry


def _published(tmp_path: Path, model_dir: Path, keypair: tuple[Path, Path], target: str) -> dict[str, Path]:
    """Sign, push with the signature and an SBOM, attest the SBOM of the pushed artifact."""
    files = {"sig": tmp_path / "model.sig", "bom": tmp_path / "bom.json", "att": tmp_path / "bom.att.json"}
    assert run(["sign", str(model_dir), "--key", str(keypair[0]), "--signature", str(files["sig"])]) == 0
    model = {"type": "machine-learning-model", "name": "model", "bom-ref": "model"}
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [model]}
    files["bom"].write_text(json.dumps(bom))
    attached = ["--signature", str(files["sig"]), "--sbom", str(files["bom"])]
    assert run(["push", str(model_dir), target, *attached]) == 0
    attest = ["attest", target, "--sbom", str(files["bom"]), "--key", str(keypair[0])]
    attest += ["-o", str(files["att"])]
    assert run([*attest, "--attach"]) == 0  # about the pushed manifest, attached as a referrer
    return files


@pytest.fixture
def target(registry: RegistryServer, repo: str) -> str:
    return f"{registry.host}/{repo}:v1"  # as in a Pod spec


def test_pull_then_verify_the_directory_offline(
    tmp_path: Path,
    model_dir: Path,
    keypair: tuple[Path, Path],
    target: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = _published(tmp_path, model_dir, keypair, target)
    capsys.readouterr()
    pulled = tmp_path / "pulled"
    assert run(["pull", target, str(pulled), "--key", str(keypair[1]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["signature"] == str(pulled / "model.sig") and doc["signatureVerified"] is True
    assert (pulled / "model.sig").read_bytes() == files["sig"].read_bytes()
    # the directory verifies on its own (no registry involved any more)
    assert run(["verify", str(pulled), "--key", str(keypair[1])]) == 0
    (pulled / "model.safetensors").write_bytes(b"tampered")
    assert run(["verify", str(pulled), "--key", str(keypair[1])]) == 1


def test_pull_without_trust_restores_the_only_signature_and_says_unverified(
    tmp_path: Path,
    model_dir: Path,
    keypair: tuple[Path, Path],
    target: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _published(tmp_path, model_dir, keypair, target)
    capsys.readouterr()
    pulled = tmp_path / "pulled"
    assert run(["pull", target, str(pulled), "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["signatureVerified"] is False and "not verified" in doc["signatureNote"]
    assert "not verified" in captured.err
    assert run(["verify", str(pulled), "--key", str(keypair[1])]) == 0
    other = tmp_path / "other"
    assert run(["pull", target, str(other), "--no-signature"]) == 0
    assert not (other / "model.sig").exists()


def test_two_signatures_unverified_restore_none_with_trust_the_one_that_verifies(
    tmp_path: Path,
    model_dir: Path,
    keypair: tuple[Path, Path],
    target: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = _published(tmp_path, model_dir, keypair, target)
    mallory = generate_keypair(tmp_path / "mallory")
    forged = tmp_path / "forged.sig"
    assert run(["sign", str(model_dir), "--key", str(mallory.private_key), "--signature", str(forged)]) == 0
    assert run(["attach", target, "--signature", str(forged)]) == 0
    capsys.readouterr()
    unverified = tmp_path / "unverified"
    assert run(["pull", target, str(unverified)]) == 0
    assert "2 model signatures are attached" in capsys.readouterr().err
    assert not (unverified / "model.sig").exists()
    trusted = tmp_path / "trusted"
    assert run(["pull", target, str(trusted), "--key", str(keypair[1])]) == 0
    assert (trusted / "model.sig").read_bytes() == files["sig"].read_bytes()  # not the newest, forged one


def test_download_each_kind(
    tmp_path: Path,
    model_dir: Path,
    keypair: tuple[Path, Path],
    target: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = _published(tmp_path, model_dir, keypair, target)
    capsys.readouterr()
    out = tmp_path / "downloaded"
    out.mkdir()
    key = ["--key", str(keypair[1])]
    assert run(["download", "signature", target, *key, "-o", str(out / "s"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verified"] is True and doc["found"][0]["kind"] == "signature"
    assert (out / "s").read_bytes() == files["sig"].read_bytes()
    for kind, original in (("sbom", files["bom"]), ("attestation", files["att"])):
        assert run(["download", kind, target, "-o", str(out / kind), "--json"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["verified"] is False and "NOT verified" in captured.err
        assert (out / kind).read_bytes() == original.read_bytes()
    # stdout: the raw content, cosign-style; stderr says it is unverified
    assert run(["download", "signature", target]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads(files["sig"].read_bytes())
    assert "NOT verified" in captured.err


def test_download_of_what_is_not_attached_exits_1(
    tmp_path: Path,
    model_dir: Path,
    keypair: tuple[Path, Path],
    target: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["push", str(model_dir), target]) == 0
    capsys.readouterr()
    for kind in ("signature", "attestation", "sbom"):
        assert run(["download", kind, target]) == 1
        assert f"no {kind} is attached" in capsys.readouterr().err
    assert run(["download", "sbom", target, "--key", str(keypair[1])]) == 2  # trust: signatures only
    assert run(["download", "sbom", target, "--json"]) == 2  # --json needs -o FILE
    wrong = generate_keypair(tmp_path / "wrong")
    sig = tmp_path / "model.sig"
    assert run(["sign", str(model_dir), "--key", str(keypair[0]), "--signature", str(sig)]) == 0
    assert run(["attach", target, "--signature", str(sig)]) == 0
    refused = ["download", "signature", target, "--key", str(wrong.public_key), "-o", str(tmp_path / "x")]
    assert run(refused) == 1
    assert not (tmp_path / "x").exists()  # nothing written when it does not verify


def test_an_existing_signature_file_is_never_replaced(
    tmp_path: Path,
    model_dir: Path,
    keypair: tuple[Path, Path],
    target: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _published(tmp_path, model_dir, keypair, target)
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    (pulled / "model.sig").write_text("the user's own file")
    capsys.readouterr()
    assert run(["pull", target, str(pulled), "--force", "--key", str(keypair[1])]) == 0
    assert "exists with other content; left as it is" in capsys.readouterr().err
    assert (pulled / "model.sig").read_text() == "the user's own file"


def test_download_json_names_the_digest_whose_signature_verified(
    tmp_path: Path,
    model_dir: Path,
    keypair: tuple[Path, Path],
    target: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tag names an unsigned artifact when guard first resolves it and the signed one when it
    verifies (a pusher moves it in between): --json must not call the first one the subject of
    a verified signature."""
    import guard.oci.store as store_module

    _published(tmp_path, model_dir, keypair, target)
    (model_dir / "model.safetensors").write_bytes(b"backdoored weights")
    evil = target.replace(":v1", ":evil")
    assert run(["push", str(model_dir), evil]) == 0
    real_open = store_module.open_store
    calls = {"resolve": 0}

    def racing_open(*args: object, **kwargs: object) -> object:
        store = real_open(*args, **kwargs)  # type: ignore[arg-type]
        real_resolve = store.resolve

        def resolve(reference: str) -> object:
            calls["resolve"] += 1
            return real_resolve("evil" if reference == "v1" and calls["resolve"] == 1 else reference)

        store.resolve = resolve  # type: ignore[method-assign,assignment]
        return store

    monkeypatch.setattr(store_module, "open_store", racing_open)
    capsys.readouterr()
    sig = tmp_path / "downloaded.sig"
    code = run(["download", "signature", target, "--key", str(keypair[1]), "-o", str(sig), "--json"])
    out = capsys.readouterr().out
    monkeypatch.setattr(store_module, "open_store", real_open)
    assert run(["pull", evil, str(tmp_path / "evil"), "--json"]) == 0
    evil_digest = json.loads(capsys.readouterr().out)["digest"]
    # before: exit 0 and {"subject": <the unsigned artifact>, "verified": true}
    assert not (code == 0 and json.loads(out)["subject"] == evil_digest)
    assert code == 1 and not sig.exists()  # the digest resolved is the one verified: unsigned
