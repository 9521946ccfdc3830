"""Unit tests: references, file kinds, ModelPack config, artifact readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.errors import UnsafeArtifactError, UntrustedContentError, UsageError
from guard.oci.modelpack import (
    ModelMetadata,
    artifact_kind,
    artifact_layers,
    build_config,
    file_kind,
    infer_metadata,
    layer_for_file,
)
from guard.oci.pull import safe_relative_path
from guard.oci.reference import host_is_loopback, parse_reference
from guard.oci.types import MODELPACK_ARTIFACT, MODELPACK_CONFIG

D = "sha256:" + "a" * 64


def test_registry_reference_parts() -> None:
    ref = parse_reference(f"oci://registry.example:5000/models/llama-3:v1@{D}")
    assert (ref.host, ref.repository) == ("registry.example:5000", "models/llama-3")
    assert (ref.tag, ref.digest) == ("v1", D)
    assert ref.reference == D
    assert str(ref) == f"oci://registry.example:5000/models/llama-3:v1@{D}"
    assert parse_reference("oci://r.example/m").reference == "latest"


def test_layout_reference_with_tag_and_colon_free_path(tmp_path: Path) -> None:
    ref = parse_reference(f"oci-layout:{tmp_path}/store:v2")
    assert ref.layout == tmp_path / "store" and ref.tag == "v2" and ref.is_layout


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("docker://x/y", "expected an artifact reference"),
        ("oci://", "no repository"),
        ("oci://r.example:99999/m", "invalid port"),
        ("oci://bad_host.example/m", "invalid registry host"),
        ("oci://r.example/UPPER", "invalid repository"),
        ("oci://r.example/m@sha256:abc", "expected a digest"),
        ("oci://r.example/m:bad tag", "invalid tag"),
        ("oci-layout:", "no PATH"),
    ],
)
def test_bad_references_say_what_was_expected(text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        parse_reference(text)


def test_loopback_detection() -> None:
    assert host_is_loopback("127.0.0.1:5000") and host_is_loopback("localhost")
    assert host_is_loopback("[::1]:80")
    assert not host_is_loopback("registry.example:5000") and not host_is_loopback("10.0.0.1")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("model.safetensors", "weight"),
        ("shards/model-00001-of-00002.bin", "weight"),
        ("config.json", "weight.config"),
        ("model.safetensors.index.json", "weight.config"),
        ("tokenizer/tokenizer.json", "weight.config"),
        ("README.md", "doc"),
        ("LICENSE", "doc"),
        ("inference.py", "code"),
        ("requirements.txt", "code"),
        ("data/train.parquet", "dataset"),
        ("eval.jsonl", "dataset"),
    ],
)
def test_file_kinds(name: str, kind: str) -> None:
    assert file_kind(name) == kind
    assert layer_for_file(name, D, 1).media_type == f"application/vnd.cncf.model.{kind}.v1.raw"


def test_config_is_filled_from_config_json_and_model_card(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "torch_dtype": "bfloat16",
                "quantization_config": {"quant_method": "gptq"},
            }
        )
    )
    (tmp_path / "README.md").write_text("---\nlicense: mit\nmodel_name: tiny\n---\ntext\n")
    names = ["config.json", "README.md", "model.safetensors"]
    meta = infer_metadata(tmp_path, names, ModelMetadata(version="1.2", param_size="7B"))
    layers = [layer_for_file(n, D, 1) for n in names]
    doc = json.loads(build_config(meta, layers))
    assert doc["descriptor"]["name"] == "tiny" and doc["descriptor"]["licenses"] == ["mit"]
    assert doc["descriptor"]["version"] == "1.2"
    assert doc["config"] == {
        "architecture": "LlamaForCausalLM",
        "format": "safetensors",
        "paramSize": "7B",
        "precision": "bfloat16",
        "quantization": "gptq",
    }
    assert doc["modelfs"] == {"type": "layers", "diffIds": [D, D, D]}
    # CLI options win over what the files say
    meta = infer_metadata(tmp_path, names, ModelMetadata(name="given", licenses=("apache-2.0",)))
    assert (meta.name, meta.licenses) == ("given", ("apache-2.0",))


def _manifest(
    artifact_type: str | None, config_type: str, layers: list[dict[str, object]]
) -> dict[str, object]:
    out: dict[str, object] = {"config": {"mediaType": config_type, "digest": D, "size": 2}, "layers": layers}
    if artifact_type:
        out["artifactType"] = artifact_type
    return out


def test_reads_cnai_and_kitops_layers() -> None:
    cnai = _manifest(
        None,
        "application/vnd.cnai.model.config.v1+json",
        [
            {
                "mediaType": "application/vnd.cnai.model.weight.v1.raw",
                "digest": D,
                "size": 1,
                "annotations": {"org.cnai.model.filepath": "w.bin"},
            },
        ],
    )
    assert artifact_kind(cnai) == "cnai"
    assert [(layer.path, layer.packing) for layer in artifact_layers(cnai)] == [("w.bin", "raw")]
    kit = _manifest(
        "application/vnd.kitops.modelkit.manifest.v1+json",
        "application/vnd.kitops.modelkit.config.v1+json",
        [
            {"mediaType": "application/vnd.kitops.modelkit.model.v1.tar+gzip", "digest": D, "size": 1},
            {"mediaType": "application/vnd.kitops.modelkit.docs.v1.tar", "digest": D, "size": 1},
        ],
    )
    assert artifact_kind(kit) == "kitops"
    assert [layer.packing for layer in artifact_layers(kit)] == ["tar+gzip", "tar"]


def test_refuses_other_artifacts_and_raw_layers_without_path() -> None:
    with pytest.raises(UntrustedContentError, match="not a model artifact"):
        artifact_layers(_manifest(None, "application/vnd.oci.image.config.v1+json", []))
    bad = _manifest(
        MODELPACK_ARTIFACT,
        MODELPACK_CONFIG,
        [
            {"mediaType": "application/vnd.cncf.model.weight.v1.raw", "digest": D, "size": 1},
        ],
    )
    with pytest.raises(UntrustedContentError, match="without a file path"):
        artifact_layers(bad)
    # an empty path is no path (guard pull exited 3, "registry error", for it: issue 9 item 12)
    empty = _manifest(
        MODELPACK_ARTIFACT,
        MODELPACK_CONFIG,
        [
            {
                "mediaType": "application/vnd.cncf.model.weight.v1.raw",
                "digest": D,
                "size": 1,
                "annotations": {"org.cncf.model.filepath": ""},
            },
        ],
    )
    with pytest.raises(UntrustedContentError, match="without a file path"):
        artifact_layers(empty)


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "a/../../b", "", "a\\..\\b", "..", "x\x00y"]
)
def test_escaping_paths_are_refused(name: str) -> None:
    with pytest.raises(UnsafeArtifactError):
        safe_relative_path(name, "layer")


def test_normal_paths_are_normalized() -> None:
    assert str(safe_relative_path("./a//b/c.bin", "layer")) == "a/b/c.bin"


def test_source_date_epoch_makes_pushes_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from guard.oci.layout import LayoutStore
    from guard.oci.push import push_model

    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a = push_model(LayoutStore(tmp_path / "a", create=True), model, "v1").descriptor.digest
    b = push_model(LayoutStore(tmp_path / "b", create=True), model, "v1").descriptor.digest
    assert a == b
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
        push_model(LayoutStore(tmp_path / "c", create=True), model, "v1")
