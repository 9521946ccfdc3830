from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.attest.cyclonedx_schema import validate_cyclonedx
from guard.attest.extract import check_cyclonedx, extract_cyclonedx
from guard.attest.modelcard import config_parameter_count, load_metadata
from guard.attest.sbom import build_sbom
from guard.cli import run
from guard.errors import AttestationError, UsageError
from guard.signing import KeySigner, sign_model


def test_sbom_from_model_card_config_and_safetensors(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bom.json"
    assert run(["sbom", str(model_dir), "-o", str(out)]) == 0
    bom = json.loads(out.read_text())
    validate_cyclonedx(out.read_text(), source="test")  # the library's strict 1.6 schema
    assert bom["specVersion"] == "1.6"
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["licenses"] == [{"license": {"id": "Apache-2.0"}}]  # "apache-2.0" normalized
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["guard:model:parameterCount"] == str(16 * 8 + 8)
    assert props["guard:model:parameterCountSource"] == "safetensors"
    assert props["guard:model:precision"] == "bf16"
    assert props["guard:model:format"] == "safetensors"
    params = model["modelCard"]["modelParameters"]
    assert params["modelArchitecture"] == "LlamaForCausalLM"
    assert params["task"] == "text-generation"
    files = {c["name"]: c for c in bom["components"] if c["type"] == "file"}
    assert set(files) == {"README.md", "config.json", "model.safetensors"}
    data = [c for c in bom["components"] if c["type"] == "data"]
    assert [d["name"] for d in data] == ["wikitext"]


def test_sbom_metadata_datasets_energy_and_signed_hash_type(
    model_dir: Path, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    from guard.signing import Serialization

    sign_model(model_dir, KeySigner.from_file(keys[0]), serialization=Serialization(hash_type="blake2b"))
    meta = tmp_path / "meta.yaml"
    meta.write_text(
        "version: 2.0.0\nparameterCount: 1000\nlicenses: [MIT]\n"
        "datasets:\n  - name: corpus\n    uri: https://example.com/corpus\n"
        "    digests: {sha256: " + "ab" * 32 + "}\n    licenses: [CC-BY-4.0]\n    personalData: true\n"
        "    relation: fineTunedOn\n"
        "energy: {trainingKWh: 100, co2eKg: 47.5, provider: Grid Co, energySource: wind}\n"
    )
    bom = build_sbom(model_dir, load_metadata(meta))
    model = bom["metadata"]["component"]
    assert model["licenses"] == [{"license": {"id": "MIT"}}]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["guard:model:parameterCount"] == "1000"
    assert props["guard:oms:hashType"] == "blake2b"
    files = [c for c in bom["components"] if c["type"] == "file"]
    assert all(c["hashes"][0]["alg"] == "BLAKE2b-512" for c in files)  # the signature's hash type
    assert "model.sig" not in {c["name"] for c in files}
    energy = model["modelCard"]["considerations"]["environmentalConsiderations"]["energyConsumptions"][0]
    assert energy["activityEnergyCost"] == {"value": 100.0, "unit": "kWh"}
    assert energy["co2CostEquivalent"] == {"value": 0.0475, "unit": "tCO2eq"}
    extracted = extract_cyclonedx(bom)
    assert extracted.energy == {"training_k_wh": 100.0, "co2e_kg": 47.5}
    (corpus,) = [d for d in extracted.datasets if d.name == "corpus"]
    assert (
        corpus.personal_data is True
        and corpus.relation == "fineTunedOn"
        and corpus.licenses == ("CC-BY-4.0",)
    )
    assert corpus.approved is False  # an SBOM never approves a dataset


def test_metadata_typo_names_the_field(tmp_path: Path) -> None:
    meta = tmp_path / "meta.yaml"
    meta.write_text("parameterCont: 3\n")
    with pytest.raises(UsageError, match="parameterCont"):
        load_metadata(meta)


def test_config_parameter_count_llama() -> None:
    # TinyLlama-1.1B's published config and parameter count (1,100,048,384).
    config = {
        "model_type": "llama",
        "vocab_size": 32000,
        "hidden_size": 2048,
        "num_hidden_layers": 22,
        "intermediate_size": 5632,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "tie_word_embeddings": False,
    }
    assert config_parameter_count(config) == 1_100_048_384
    assert config_parameter_count({"model_type": "bert"}) is None


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"spdxVersion": "SPDX-2.3"}, r"\$\.bomFormat: expected 'CycloneDX', found None"),
        (
            {"bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1},
            r"specVersion: expected CycloneDX '1.6', found '1.4'",
        ),
        (
            {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": "data"}]},
            r"\$\.components\[0\].*name",
        ),
        ([1, 2], "expected a CycloneDX BOM"),
    ],
)
def test_not_cyclonedx_16_is_a_clear_error(document: object, expected: str) -> None:
    with pytest.raises(AttestationError, match=expected):
        check_cyclonedx(document)


def test_bom_without_a_model_component_is_refused() -> None:
    with pytest.raises(AttestationError, match="machine-learning-model"):
        extract_cyclonedx(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.6",
                "version": 1,
                "components": [{"type": "library", "name": "x"}],
            }
        )


def test_sbom_of_a_shard_signed_model_still_lists_whole_file_digests(
    model_dir: Path, keys: tuple[Path, Path]
) -> None:
    import hashlib

    from guard.signing import Serialization

    sign_model(
        model_dir, KeySigner.from_file(keys[0]), serialization=Serialization(method="shards", shard_size=64)
    )
    bom = build_sbom(model_dir)
    files = {c["name"]: c["hashes"][0]["content"] for c in bom["components"] if c["type"] == "file"}
    expected = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert files["model.safetensors"] == expected
    assert ":" not in "".join(files)  # whole files, not shard names


def test_model_card_yaml_other_license_and_co2_in_grams(model_dir: Path) -> None:
    from guard.attest.modelcard import describe_model

    (model_dir / "model_card.yaml").write_text(
        "license: other\nlicense_name: acme-model-license\nco2_eq_emissions: {emissions: 2500}\n"
    )
    meta = describe_model(model_dir).meta
    assert meta.licenses == ("LicenseRef-acme-model-license",)
    assert meta.energy is not None and meta.energy.co2e_kg == 2.5
    bom = build_sbom(model_dir)  # CO2 without kWh: a property, still valid CycloneDX
    env = bom["metadata"]["component"]["modelCard"]["considerations"]["environmentalConsiderations"]
    assert env["properties"] == [{"name": "guard:energy:trainingCo2eKg", "value": "2.5"}]
    assert extract_cyclonedx(bom).energy == {"co2e_kg": 2.5}


def test_broken_safetensors_header_is_a_clear_error(model_dir: Path) -> None:
    (model_dir / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(UsageError, match="not a safetensors file"):
        build_sbom(model_dir)


def test_sbom_warns_when_the_directory_no_longer_matches_model_sig(
    model_dir: Path, keys: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    sign_model(model_dir, KeySigner.from_file(keys[0]))
    (model_dir / "config.json").write_text("{}")
    build_sbom(model_dir)
    assert any("no longer matches" in r.message and "config.json" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("https://example.com/datasets/x?y=1#z", True),
        ("s3://bucket/key", True),
        ("file:///tmp/r%C3%A9views.jsonl", True),
        ("https://example.com/ünïcode", True),
        ("http://exa mple.com/", False),
        ("https://example.com/<x>", False),
        ("https://example.com/%zz", False),
    ],
)
def test_fast_verifying_validator_agrees_with_the_library(model_dir: Path, url: str, valid: bool) -> None:
    """The verifying path checks IRIs in linear time; it must accept and refuse what the library does."""
    bom = build_sbom(model_dir)
    bom["metadata"]["component"]["externalReferences"] = [{"type": "website", "url": url}]
    outcomes = []
    for fast in (False, True):
        try:
            validate_cyclonedx(json.dumps(bom), source="t", fast=fast)
            outcomes.append(True)
        except UsageError as err:
            assert "externalReferences[0].url" in str(err)
            outcomes.append(False)
    assert outcomes == [valid, valid]


def test_binary_metadata_or_model_card_is_a_clear_usage_error(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "meta.yaml"
    binary.write_bytes(b"\xee\xff\x00binary")
    out = tmp_path / "bom.json"
    assert run(["sbom", str(model_dir), "--metadata", str(binary), "-o", str(out)]) == 2
    assert "expected a UTF-8 YAML or JSON metadata file, found binary data" in capsys.readouterr().err
    (model_dir / "model_card.yaml").write_bytes(b"\xee\xff\x00binary")
    assert run(["sbom", str(model_dir), "-o", str(out)]) == 2
    assert "expected a UTF-8 YAML or JSON model card, found binary data" in capsys.readouterr().err
    assert not out.exists()


def test_sbom_output_that_is_a_directory_is_a_usage_error(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["sbom", str(model_dir), "-o", str(tmp_path)]) == 2
    assert f"cannot write {tmp_path}: it is a directory; expected a file path" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("energy: {trainingKWh: .inf}\n", "energy.trainingKWh: Input should be a finite number"),
        ("parameterCount: 99999999999999999999999999999999\n", "parameterCount: Input should be less than"),
    ],
)
def test_metadata_values_json_cannot_carry_are_refused(
    model_dir: Path, tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # .inf was written as `Infinity` (not JSON); a count beyond 2^53 is not exact in JSON readers
    meta = tmp_path / "meta.yaml"
    meta.write_text(text)
    out = tmp_path / "bom.json"
    assert run(["sbom", str(model_dir), "--metadata", str(meta), "-o", str(out)]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_empty_metadata_file_says_so(tmp_path: Path) -> None:
    meta = tmp_path / "meta.yaml"
    meta.write_text("")
    with pytest.raises(UsageError, match="expected a mapping of model metadata, found an empty file"):
        load_metadata(meta)
    meta.write_text("- a\n")
    with pytest.raises(UsageError, match="found a list"):
        load_metadata(meta)
