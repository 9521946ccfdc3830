"""Fixtures for the OCI tests: a small model, a key pair, unique repository names."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _private_digest_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of its own for each test."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")
    return f"tests/{name[:60].strip('-')}-{next(_counter)}"


def make_model(root: Path, weight_bytes: int = 256 * 1024) -> Path:
    model = root / "model"
    (model / "tokenizer").mkdir(parents=True)
    (model / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16", "model_type": "llama"})
    )
    (model / "model.safetensors").write_bytes(os.urandom(weight_bytes))
    (model / "tokenizer" / "tokenizer.json").write_text('{"version": "1.0"}')
    (model / "README.md").write_text("---\nlicense: apache-2.0\nmodel_name: tiny-llama\n---\n# Tiny\n")
    (model / "inference.py").write_text("print('hello')\n")
    return model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return make_model(tmp_path)


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from guard.signing.keys import generate_keypair

    pair = generate_keypair(tmp_path_factory.mktemp("keys"))
    return pair.private_key, pair.public_key
