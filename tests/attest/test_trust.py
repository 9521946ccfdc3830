"""guard attest / facts with keyless (test Sigstore instance, verified offline) and --require."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.attest.sign import sign_attestation
from guard.attest.specs import DATASET_PROVENANCE_TYPE, load_spec_file
from guard.attest.subject import directory_subject
from guard.cli import run
from guard.signing.types import SigningMethod
from guard.testing.sigstore import DEFAULT_ISSUER, TestSigstore

ALICE = "data-governance@example.com"


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory: pytest.TempPathFactory) -> TestSigstore:
    return TestSigstore.create(tmp_path_factory.mktemp("sigstore"))


def _keyless_attestation(model_dir: Path, sigstore: TestSigstore, path: Path) -> Path:
    predicate = json.loads(json.dumps(load_spec_file("dataset-provenance/v1", "example.json")))

    class Alice:
        method: SigningMethod = "keyless"

        def sign_payload(self, payload: bytes) -> dict[str, object]:
            return sigstore.sign_payload(payload, identity=ALICE)

    path.write_bytes(
        sign_attestation(directory_subject(model_dir), DATASET_PROVENANCE_TYPE, predicate, Alice())
    )
    return path


def _facts(model_dir: Path, att: Path, sigstore: TestSigstore, identity: str, *extra: str) -> list[str]:
    return [
        "facts",
        str(model_dir),
        "--attestation",
        str(att),
        "--identity",
        identity,
        "--issuer",
        DEFAULT_ISSUER,
        "--trust-config",
        str(sigstore.trust_config_path),
        "--offline",
        "--json",
        *extra,
    ]


def test_keyless_attestation_trusted_identity(
    model_dir: Path, tmp_path: Path, sigstore: TestSigstore, capsys: pytest.CaptureFixture[str]
) -> None:
    att = _keyless_attestation(model_dir, sigstore, tmp_path / "ds.att.json")
    assert run(_facts(model_dir, att, sigstore, ALICE)) == 0
    facts = json.loads(capsys.readouterr().out)
    (entry,) = [a for a in facts["attestations"] if a["name"] == "datasets"]
    assert entry["status"] == "present"
    assert entry["signer"] == {"method": "keyless", "identity": ALICE, "issuer": DEFAULT_ISSUER}
    assert len(facts["datasets"]) == 2


def test_keyless_attestation_other_identity_is_invalid(
    model_dir: Path, tmp_path: Path, sigstore: TestSigstore, capsys: pytest.CaptureFixture[str]
) -> None:
    att = _keyless_attestation(model_dir, sigstore, tmp_path / "ds.att.json")
    assert run(_facts(model_dir, att, sigstore, "mallory@example.com")) == 0
    facts = json.loads(capsys.readouterr().out)
    (entry, missing) = [a for a in facts["attestations"] if a["name"] == "datasets"]
    assert entry["status"] == "invalid" and ALICE in entry["reason"]
    assert missing["status"] == "missing"
    assert facts["datasets"] == []
    # --require turns the missing kind into exit 1, naming it and why.
    assert run(_facts(model_dir, att, sigstore, "mallory@example.com", "--require", "datasets")) == 1
    assert "datasets" in capsys.readouterr().err


def test_require_usage(model_dir: Path, keys: tuple[Path, Path]) -> None:
    assert run(["facts", str(model_dir), "--key", str(keys[1]), "--require", "sbomb"]) == 2
    assert run(["facts", str(model_dir), "--key", str(keys[1]), "--require", "signature"]) == 1
    assert run(["facts", str(model_dir)]) == 2  # no trust given: usage error, never "all present"


def test_certificate_signed_attestation_through_the_cli(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guard.testing.pki import make_pki

    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other-pki")
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps(load_spec_file("dataset-provenance/v1", "example.json")))
    att = tmp_path / "ds.att.json"
    assert (
        run(
            [
                "attest",
                str(model_dir),
                "--datasets",
                str(ds),
                "--key",
                str(pki.leaf_key),
                "--certificate",
                str(pki.leaf),
                "--certificate-chain",
                str(pki.chain),
                "-o",
                str(att),
            ]
        )
        == 0
    )
    capsys.readouterr()
    for roots, expected in ((pki.root, "present"), (other.root, "invalid")):
        assert (
            run(
                [
                    "facts",
                    str(model_dir),
                    "--attestation",
                    str(att),
                    "--certificate-roots",
                    str(roots),
                    "--json",
                ]
            )
            == 0
        )
        facts = json.loads(capsys.readouterr().out)
        (entry, *_) = [a for a in facts["attestations"] if a["name"] == "datasets"]
        assert entry["status"] == expected
        if expected == "present":
            assert entry["signer"]["method"] == "certificate"
