"""Fixtures for the signing tests: a small model directory, a key pair, a test PKI."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.signing.keys import KeyPair, generate_keypair
from guard.testing.pki import Pki, make_pki


def write_model(root: Path) -> Path:
    """A small model directory with nested files and names that sort differently by path parts
    and by code point (``a.b`` / ``a/b`` / ``a-b``)."""
    (root / "a").mkdir(parents=True)
    (root / "a" / "b").write_bytes(b"nested\n")
    (root / "a.b").write_bytes(b"dotted\n")
    (root / "a-b").write_bytes(b"dashed\n")
    (root / "config.json").write_text('{"architectures": ["TinyModel"], "model_type": "tiny"}\n')
    (root / "model.safetensors").write_bytes(bytes(range(256)) * 40)
    (root / "empty.txt").write_bytes(b"")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model(tmp_path / "tiny-model")


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_keypair(tmp_path_factory.mktemp("other-keys"), "ecdsa-p384")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _private_digest_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """`guard sign` fills the user's digest cache by default: point it at a temporary directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
