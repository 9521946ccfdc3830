"""CNCF ModelPack artifacts: build one from a model directory, read ModelPack / cnai / KitOps.

One ``.raw`` layer per file, so a layer's digest is the file's sha256 and an OMS ``files``
signature can be checked against the manifest without fetching a byte of weights. The config's
``modelfs.diffIds`` are the layers' uncompressed digests (model-spec v0.0.7 renamed ``diff_ids``
to ``diffIds``; ``guard.oci.packaging`` reads both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from guard.errors import UntrustedContentError, UsageError
from guard.oci.types import (
    CNAI_ARTIFACT,
    CNAI_CONFIG,
    CNAI_FILEPATH,
    CNAI_LAYER_PREFIX,
    KITOPS_ARTIFACT,
    KITOPS_CONFIG,
    KITOPS_LAYER_PREFIX,
    MODELPACK_ARTIFACT,
    MODELPACK_CONFIG,
    MODELPACK_FILE_METADATA,
    MODELPACK_FILEPATH,
    MODELPACK_LAYER_PREFIX,
    MODELPACK_UNTESTED,
    OCI_TITLE,
    Descriptor,
)
from guard.untrusted import parse_json

WEIGHT_SUFFIXES = {
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".gguf",
    ".ggml",
    ".onnx",
    ".h5",
    ".hdf5",
    ".pb",
    ".tflite",
    ".msgpack",
    ".npz",
    ".npy",
    ".mlmodel",
    ".pkl",
    ".pickle",
    ".joblib",
    ".keras",
    ".engine",
    ".plan",
    ".mar",
    ".nemo",
    ".params",
    ".llamafile",
}
CONFIG_NAMES = {
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    "processor_config.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "chat_template.json",
    "chat_template.jinja",
    "adapter_config.json",
    "params.json",
}
CODE_SUFFIXES = {
    ".py",
    ".sh",
    ".ipynb",
    ".js",
    ".ts",
    ".go",
    ".rs",
    ".c",
    ".cc",
    ".cpp",
    ".h",
    ".hpp",
    ".java",
    ".r",
    ".jl",
    ".cu",
    ".lua",
}
DATASET_SUFFIXES = {".csv", ".tsv", ".parquet", ".jsonl", ".arrow", ".tfrecord", ".avro", ".orc"}
DOC_SUFFIXES = {".md", ".rst", ".txt", ".pdf", ".html", ".adoc"}
DOC_STEMS = {"readme", "license", "licence", "notice", "copying", "model_card", "modelcard", "citation"}
DATASET_DIRS = {"data", "dataset", "datasets"}

_PARAM_SUFFIX = ((1e15, "Q"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def file_kind(name: str) -> str:
    """``weight``, ``weight.config``, ``doc``, ``code`` or ``dataset`` for a relative path."""
    path = PurePosixPath(name)
    base = path.name.lower()
    suffix = path.suffix.lower()
    if base in CONFIG_NAMES or base.endswith(".index.json") or suffix == ".tiktoken":
        return "weight.config"
    if suffix in WEIGHT_SUFFIXES:
        return "weight"
    if path.stem.lower() in DOC_STEMS or (suffix in DOC_SUFFIXES and base != "requirements.txt"):
        return "doc"
    if suffix in CODE_SUFFIXES or base in {"requirements.txt", "dockerfile", "makefile"}:
        return "code"
    if suffix in DATASET_SUFFIXES or any(p.lower() in DATASET_DIRS for p in path.parts[:-1]):
        return "dataset"
    if suffix in {".json", ".yaml", ".yml", ".toml"}:
        return "weight.config"
    return "weight"  # model files without a telling suffix (shards, raw tensors)


def layer_media_type(name: str) -> str:
    return f"{MODELPACK_LAYER_PREFIX}{file_kind(name)}.v1.raw"


@dataclass(frozen=True)
class ModelMetadata:
    """What ``guard push`` knows about the model beyond its files (CLI options win)."""

    name: str | None = None
    version: str | None = None
    authors: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    source_url: str | None = None
    revision: str | None = None
    architecture: str | None = None
    format: str | None = None
    param_size: str | None = None
    precision: str | None = None
    quantization: str | None = None


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        data = parse_json(path.read_bytes(), str(path), error=UsageError)
    except (OSError, UsageError):
        return {}
    return data if isinstance(data, Mapping) else {}


def _card_front_matter(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, Mapping) else {}


def _param_size(count: float) -> str:
    for scale, letter in _PARAM_SUFFIX:
        if count >= scale:
            return f"{count / scale:.1f}".rstrip("0").rstrip(".") + letter
    return str(int(count))


def infer_metadata(model_dir: Path, names: Sequence[str], given: ModelMetadata) -> ModelMetadata:
    """Fill what the CLI did not give from ``config.json`` and the model card's front matter."""
    hf = _read_json(model_dir / "config.json") if "config.json" in names else {}
    card: Mapping[str, Any] = {}
    for candidate in ("README.md", "MODEL_CARD.md", "model_card.md"):
        if candidate in names:
            card = _card_front_matter(model_dir / candidate)
            break
    architectures = hf.get("architectures")
    architecture = given.architecture or (
        architectures[0] if isinstance(architectures, list) and architectures else hf.get("model_type")
    )
    precision = given.precision or hf.get("torch_dtype") or hf.get("dtype")
    quant = hf.get("quantization_config")
    quantization = given.quantization or (quant.get("quant_method") if isinstance(quant, Mapping) else None)
    suffixes = {PurePosixPath(n).suffix.lower() for n in names}
    fmt = given.format or next(
        (
            f
            for s, f in (
                (".safetensors", "safetensors"),
                (".gguf", "gguf"),
                (".onnx", "onnx"),
                (".bin", "pytorch"),
                (".pt", "pytorch"),
                (".pth", "pytorch"),
                (".h5", "keras"),
            )
            if s in suffixes
        ),
        None,
    )
    licenses = given.licenses
    if not licenses:
        lic = card.get("license")
        licenses = tuple(str(x) for x in lic) if isinstance(lic, list) else ((str(lic),) if lic else ())
    return ModelMetadata(
        name=given.name or (str(card["model_name"]) if card.get("model_name") else model_dir.resolve().name),
        version=given.version,
        authors=given.authors,
        licenses=licenses,
        source_url=given.source_url,
        revision=given.revision,
        architecture=str(architecture) if architecture else None,
        format=fmt,
        param_size=given.param_size,
        precision=str(precision) if precision else None,
        quantization=str(quantization) if quantization else None,
    )


def build_config(meta: ModelMetadata, layers: Sequence[Descriptor], created: datetime | None = None) -> bytes:
    """The ``application/vnd.cncf.model.config.v1+json`` document."""
    descriptor: dict[str, Any] = {"createdAt": (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for key, value in (
        ("name", meta.name),
        ("version", meta.version),
        ("sourceURL", meta.source_url),
        ("revision", meta.revision),
    ):
        if value:
            descriptor[key] = value
    if meta.authors:
        descriptor["authors"] = list(meta.authors)
    if meta.licenses:
        descriptor["licenses"] = list(meta.licenses)
    config = {
        key: value
        for key, value in (
            ("architecture", meta.architecture),
            ("format", meta.format),
            ("paramSize", meta.param_size),
            ("precision", meta.precision),
            ("quantization", meta.quantization),
        )
        if value
    }
    doc = {
        "descriptor": descriptor,
        "config": config,
        "modelfs": {"type": "layers", "diffIds": [layer.digest for layer in layers]},
    }
    return json.dumps(doc, indent=2, sort_keys=True).encode()


def layer_for_file(name: str, digest: str, size: int, executable: bool = False) -> Descriptor:
    """A raw layer: path annotations, and ModelPack file metadata made reproducible (owner 0,
    mode 0644 or 0755, epoch mtime) so the same files always give the same manifest."""
    metadata = {
        "name": PurePosixPath(name).name,
        "mode": 0o755 if executable else 0o644,
        "uid": 0,
        "gid": 0,
        "size": size,
        "mtime": "1970-01-01T00:00:00Z",
        "typeflag": 48,  # '0': a regular file
    }
    annotations = {
        MODELPACK_FILEPATH: name,
        OCI_TITLE: name,
        MODELPACK_FILE_METADATA: json.dumps(metadata, separators=(",", ":")),
        # the kind comes from the file name, not from inspecting the content
        MODELPACK_UNTESTED: "true",
    }
    return Descriptor(layer_media_type(name), digest, size, annotations=annotations)


def layer_is_executable(descriptor: Descriptor) -> bool:
    """True when the layer's file metadata gives the file an execute bit."""
    raw = descriptor.annotations.get(MODELPACK_FILE_METADATA)
    try:
        metadata = parse_json(raw, MODELPACK_FILE_METADATA, max_bytes=64 * 1024) if raw else None
    except UntrustedContentError:
        return False
    mode = metadata.get("mode") if isinstance(metadata, dict) else None
    return isinstance(mode, int) and bool(mode & 0o111)


# --- reading artifacts -----------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactLayer:
    """A layer of a model artifact: where it goes and how it is packed."""

    descriptor: Descriptor
    path: str | None  # the file path (raw layers) or the directory to unpack into (tar)
    packing: str  # raw | tar | tar+gzip | tar+zstd

    @property
    def is_raw(self) -> bool:
        return self.packing == "raw"


_PACKINGS = ("tar+gzip", "tar+zstd", "tar", "raw")


def _packing(media_type: str) -> str | None:
    for packing in _PACKINGS:
        if media_type.endswith(f".{packing}") or media_type.endswith(f".v1.{packing}"):
            return packing
    return None


def artifact_kind(manifest: Mapping[str, Any]) -> str:
    """``modelpack``, ``cnai``, ``kitops`` or ``other`` for a parsed image manifest."""
    config = manifest.get("config") if isinstance(manifest.get("config"), Mapping) else {}
    # whoever pushed the manifest wrote these: only strings name a kind (a list is unhashable)
    types = {t for t in (manifest.get("artifactType"), (config or {}).get("mediaType")) if isinstance(t, str)}
    if types & {MODELPACK_ARTIFACT, MODELPACK_CONFIG}:
        return "modelpack"
    if types & {CNAI_ARTIFACT, CNAI_CONFIG}:
        return "cnai"
    if types & {KITOPS_ARTIFACT, KITOPS_CONFIG}:
        return "kitops"
    return "other"


def artifact_layers(manifest: Mapping[str, Any]) -> list[ArtifactLayer]:
    """The layers of a model artifact with their paths. The manifest is what its pusher wrote:
    UntrustedContentError for other artifacts and for layers guard cannot place."""
    kind = artifact_kind(manifest)
    if kind == "other":
        config = manifest.get("config")
        config_type = config.get("mediaType") if isinstance(config, Mapping) else None
        raise UntrustedContentError(
            "not a model artifact: expected a ModelPack, cnai or KitOps manifest, found artifactType "
            f"{str(manifest.get('artifactType'))[:100]!r}, config {str(config_type)[:100]!r}"
        )
    raw_layers = manifest.get("layers")
    if not isinstance(raw_layers, list):
        raise UntrustedContentError("manifest.layers: expected a list")
    out: list[ArtifactLayer] = []
    prefixes = {"modelpack": MODELPACK_LAYER_PREFIX, "cnai": CNAI_LAYER_PREFIX, "kitops": KITOPS_LAYER_PREFIX}
    prefix = prefixes[kind]
    for i, raw in enumerate(raw_layers):
        desc = Descriptor.from_json(raw, f"manifest.layers[{i}]")
        if not desc.media_type.startswith((MODELPACK_LAYER_PREFIX, CNAI_LAYER_PREFIX, prefix)):
            raise UntrustedContentError(f"manifest.layers[{i}]: unexpected media type {desc.media_type!r}")
        packing = _packing(desc.media_type)
        if packing is None:
            raise UntrustedContentError(f"manifest.layers[{i}]: unsupported packing in {desc.media_type!r}")
        ann = desc.annotations
        path = ann.get(MODELPACK_FILEPATH) or ann.get(CNAI_FILEPATH) or ann.get(OCI_TITLE)
        if path is None and packing == "raw":
            raise UntrustedContentError(f"manifest.layers[{i}]: a raw layer without a file path annotation")
        out.append(ArtifactLayer(desc, path, packing))
    return out
