"""What a model directory says about itself: model card, config.json, safetensors headers.

Sources, most authoritative first: the ``--metadata`` file the user gives, the model card (YAML
file or README front matter, Hugging Face keys), ``config.json`` (Hugging Face transformers) and
the safetensors headers (exact parameter count and dtypes, read without loading any weights).
Every value that cannot be established stays ``None``: nothing is guessed.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from guard.config import format_validation_error
from guard.errors import UsageError
from guard.textfile import read_user_text
from guard.untrusted import parse_json

MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the format's own limit is 100 MB
MODEL_CARD_NAMES = ("model_card.yaml", "model-card.yaml", "modelcard.yaml", "model_card.yml")

DTYPE_PRECISION = {
    # torch_dtype spellings in config.json
    "float64": "fp64",
    "float32": "fp32",
    "float": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "bfloat16": "bf16",
    "float8_e4m3fn": "fp8_e4m3",
    "float8_e5m2": "fp8_e5m2",
    "int8": "int8",
    "uint8": "uint8",
    # safetensors dtypes
    "F64": "fp64",
    "F32": "fp32",
    "F16": "fp16",
    "BF16": "bf16",
    "F8_E4M3": "fp8_e4m3",
    "F8_E5M2": "fp8_e5m2",
    "I8": "int8",
    "U8": "uint8",
    "I16": "int16",
    "I32": "int32",
    "I64": "int64",
    "BOOL": "bool",
}
FORMAT_BY_SUFFIX = {
    ".safetensors": "safetensors",
    ".gguf": "gguf",
    ".onnx": "onnx",
    ".bin": "pytorch",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".h5": "keras",
    ".keras": "keras",
    ".tflite": "tflite",
    ".mlmodel": "coreml",
    ".pb": "tensorflow",
}


class InputModel(BaseModel):
    # allow_inf_nan=False: YAML's .inf would be written as `Infinity`, which is not JSON
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, allow_inf_nan=False
    )


class DatasetInput(InputModel):
    """A dataset as the ``--metadata`` file (or a model card) names it."""

    name: str = Field(min_length=1)
    uri: str | None = None
    digests: dict[str, str] = Field(default_factory=dict)
    licenses: tuple[str, ...] = ()
    relation: Literal["trainedOn", "fineTunedOn", "evaluatedOn"] = "trainedOn"
    description: str | None = None
    source: str | None = None
    collection_method: str | None = None
    personal_data: bool | None = None
    sensitive_data: bool | None = None
    sensitive_data_categories: tuple[str, ...] = ()


class EnergyInput(InputModel):
    training_k_wh: float | None = Field(default=None, ge=0, alias="trainingKWh")
    co2e_kg: float | None = Field(default=None, ge=0, alias="co2eKg")
    energy_source: Literal[
        "coal",
        "oil",
        "natural-gas",
        "nuclear",
        "wind",
        "solar",
        "geothermal",
        "hydropower",
        "biofuel",
        "unknown",
        "other",
    ] = "unknown"
    provider: str | None = None


class ModelMetadata(InputModel):
    """The ``guard sbom --metadata FILE`` document (YAML or JSON, camelCase keys)."""

    name: str | None = None
    version: str | None = None
    description: str | None = None
    supplier: str | None = None
    licenses: tuple[str, ...] = ()
    architecture: str | None = None
    architecture_family: str | None = None
    parameter_count: int | None = Field(default=None, ge=0, le=2**53)  # exact in every JSON reader
    precision: str | None = None
    quantization: str | None = None
    format: str | None = None
    task: str | None = None
    approach: (
        Literal["supervised", "unsupervised", "reinforcement-learning", "semi-supervised", "self-supervised"]
        | None
    ) = None
    datasets: tuple[DatasetInput, ...] = ()
    energy: EnergyInput | None = None


@dataclass(frozen=True)
class ModelDescription:
    """Everything known about a model directory, merged from all sources."""

    meta: ModelMetadata
    parameter_count_source: str | None  # "metadata" | "safetensors" | "config"
    sources: tuple[str, ...]  # files the description was read from


def load_metadata(path: Path) -> ModelMetadata:
    data = _read_yaml(path, what="metadata file")
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise UsageError(f"{path}: expected a mapping of model metadata, found {found}")
    try:
        return ModelMetadata.model_validate(data)
    except ValidationError as err:
        raise UsageError(format_validation_error(err, str(path))) from err


def _read_yaml(path: Path, *, what: str) -> Any:
    text = read_user_text(path, what=what, expected=f"a UTF-8 YAML or JSON {what}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: {what} is not valid YAML or JSON: {err}") from err


def read_model_card(model_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The model card mapping (Hugging Face keys) and the file it came from."""
    for name in MODEL_CARD_NAMES:
        path = model_dir / name
        if path.is_file():
            data = _read_yaml(path, what="model card")
            if not isinstance(data, dict):
                raise UsageError(f"{path}: expected a mapping, found {type(data).__name__}")
            return data, name
    readme = model_dir / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            end = text.find("\n---", 3)
            if end > 0:
                try:
                    data = yaml.safe_load(text[3:end])
                except yaml.YAMLError as err:
                    raise UsageError(f"{readme}: the front matter is not valid YAML: {err}") from err
                if isinstance(data, dict):
                    return data, "README.md"
    return {}, None


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UsageError(f"{path}: not a readable JSON file: {err.strerror or err}") from err
    data = parse_json(raw, str(path), error=UsageError)
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes); no weights read."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise UsageError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
            (size,) = struct.unpack("<Q", raw)
            if size > MAX_SAFETENSORS_HEADER:
                raise UsageError(f"{path}: not a safetensors file (header length {size} exceeds 100 MB)")
            raw_header = fh.read(size)
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from err
    header = parse_json(
        raw_header,
        f"{path}: not a safetensors file: header",
        max_bytes=MAX_SAFETENSORS_HEADER,
        error=UsageError,
    )
    if not isinstance(header, dict):
        raise UsageError(f"{path}: not a safetensors file (header is not a JSON object)")
    return header


def _walk_files(model_dir: Path) -> Iterator[Path]:
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir)
        if rel.parts[0] in {".git", ".github"} or path.is_symlink() or not path.is_file():
            continue
        yield path


def tensor_stats(model_dir: Path) -> tuple[int | None, str | None]:
    """Exact parameter count and dominant precision from all safetensors headers."""
    total = 0
    by_dtype: Counter[str] = Counter()
    found = False
    for path in _walk_files(model_dir):
        if path.suffix != ".safetensors":
            continue
        found = True
        for name, entry in safetensors_header(path).items():
            if name == "__metadata__":
                continue
            if not isinstance(entry, Mapping) or not isinstance(entry.get("shape"), list):
                raise UsageError(f"{path}: tensor {name!r} has no shape in the safetensors header")
            count = math.prod(int(d) for d in entry["shape"])
            total += count
            by_dtype[str(entry.get("dtype"))] += count
    if not found:
        return None, None
    precision = None
    if by_dtype:
        dtype, count = by_dtype.most_common(1)[0]
        precision = DTYPE_PRECISION.get(dtype, dtype.lower())
        if count < 0.9 * total:
            precision = "mixed"
    return total, precision


def config_parameter_count(config: Mapping[str, Any]) -> int | None:
    """Parameter count of a Llama-family decoder from its config (embeddings, attention with
    grouped KV heads, gated MLP, RMS norms); None for configs it does not describe."""
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads")
    if not all(isinstance(config.get(k), int) for k in keys):
        return None
    if config.get("model_type") not in {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2"}:
        return None
    vocab, hidden, layers, inter, heads = (int(config[k]) for k in keys)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    if config.get("attention_bias") or config.get("model_type") == "qwen2":
        attention += heads * head_dim + 2 * kv_heads * head_dim
    per_layer = attention + 3 * hidden * inter + 2 * hidden
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", False) else 2)
    return embeddings + layers * per_layer + hidden


def detect_format(model_dir: Path) -> str | None:
    formats = {FORMAT_BY_SUFFIX[p.suffix] for p in _walk_files(model_dir) if p.suffix in FORMAT_BY_SUFFIX}
    if not formats:
        return None
    for preferred in ("safetensors", "gguf", "onnx"):
        if preferred in formats:
            return preferred
    return sorted(formats)[0]


def _card_licenses(card: Mapping[str, Any]) -> tuple[str, ...]:
    value = card.get("license")
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    out = []
    for item in items:
        if item == "other" and isinstance(card.get("license_name"), str):
            out.append(f"LicenseRef-{card['license_name']}")
        elif isinstance(item, str) and item:
            out.append(item)
    return tuple(out)


def _card_energy(card: Mapping[str, Any]) -> EnergyInput | None:
    co2 = card.get("co2_eq_emissions")
    grams = co2.get("emissions") if isinstance(co2, Mapping) else co2
    if isinstance(grams, int | float) and not isinstance(grams, bool) and grams >= 0:
        return EnergyInput(co2e_kg=float(grams) / 1000.0)  # Hugging Face model cards state grams
    return None


def _str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) and value else None


def describe_model(model_dir: Path, metadata: ModelMetadata | None = None) -> ModelDescription:
    """Merge the metadata file, the model card, config.json and safetensors headers."""
    card, card_file = read_model_card(model_dir)
    config = read_config(model_dir)
    sources = [s for s in (card_file, "config.json" if config else None) if s]
    count, tensor_precision = tensor_stats(model_dir)
    count_source = "safetensors" if count is not None else None
    if count is None and (estimate := config_parameter_count(config)) is not None:
        count, count_source = estimate, "config"
    quant = config.get("quantization_config")
    quantization = quant.get("quant_method") if isinstance(quant, Mapping) else None
    precision = tensor_precision
    if isinstance(config.get("torch_dtype"), str) and tensor_precision in (None, "mixed"):
        precision = DTYPE_PRECISION.get(config["torch_dtype"], config["torch_dtype"])
    if isinstance(quant, Mapping) and isinstance(quant.get("bits"), int):
        precision = f"int{quant['bits']}"
    architectures = config.get("architectures")
    card_datasets = card.get("datasets")
    derived: dict[str, Any] = {
        "name": _str(card, "model_name") or model_dir.resolve().name,
        "licenses": _card_licenses(card),
        "architecture": architectures[0] if isinstance(architectures, list) and architectures else None,
        "architecture_family": _str(config, "model_type"),
        "parameter_count": count,
        "precision": precision,
        "quantization": quantization if isinstance(quantization, str) else None,
        "format": detect_format(model_dir),
        "task": _str(card, "pipeline_tag"),
        "datasets": tuple(DatasetInput(name=d) for d in card_datasets if isinstance(d, str) and d)
        if isinstance(card_datasets, list)
        else (),
        "energy": _card_energy(card),
    }
    given = metadata.model_dump(exclude_unset=True) if metadata else {}
    if "parameter_count" in given:
        count_source = "metadata"
    merged = {**{k: v for k, v in derived.items() if v not in (None, ())}, **given}
    return ModelDescription(
        meta=ModelMetadata.model_validate(merged),
        parameter_count_source=count_source if merged.get("parameter_count") is not None else None,
        sources=tuple(sources),
    )
