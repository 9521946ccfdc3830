from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from guard.signing.keys import generate_keypair


@pytest.fixture(autouse=True)
def _no_digest_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_DIGEST_CACHE", "off")


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = 2
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    model = tmp_path / "tiny-model"
    model.mkdir()
    write_safetensors(model / "model.safetensors", {"embed": ("BF16", [16, 8]), "norm": ("BF16", [8])})
    (model / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16"})
    )
    (model / "README.md").write_text(
        "---\nlicense: apache-2.0\npipeline_tag: text-generation\ndatasets:\n- wikitext\n---\n# tiny\n"
    )
    return model


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    pair = generate_keypair(tmp_path / "keys-a")
    return pair.private_key, pair.public_key


@pytest.fixture
def other_keys(tmp_path: Path) -> tuple[Path, Path]:
    pair = generate_keypair(tmp_path / "keys-b")
    return pair.private_key, pair.public_key
