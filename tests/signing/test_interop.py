"""Interoperability with the OMS reference implementation (model-signing 1.1.1), both directions,
for the key and certificate methods, files and shards serializations."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Literal

import model_signing
import pytest

from guard.errors import IntegrityError
from guard.signing import (
    CertificateSigner,
    CertificateVerifier,
    KeySigner,
    KeyVerifier,
    Serialization,
    sign_model,
    verify_model,
)
from guard.signing.dsse import b64encode, pae_legacy
from guard.signing.keys import KeyPair, ecdsa_hash, load_private_key, public_key_hint
from guard.signing.types import IN_TOTO_PAYLOAD_TYPE, LEGACY_PREDICATE_TYPE, HashType
from guard.testing.pki import Pki

SERIALIZATIONS = {
    "files-sha256": Serialization(),
    "shards-sha256": Serialization(method="shards", shard_size=1000),
    "files-blake3": Serialization(hash_type="blake3"),
}


# guard's hash names -> model-signing's (it calls BLAKE2b "blake2")
_MS_HASH: dict[HashType, Literal["sha256", "blake2", "blake3"]] = {
    "sha256": "sha256",
    "blake2b": "blake2",
    "blake3": "blake3",
}


def _ms_hashing(s: Serialization) -> model_signing.hashing.Config:
    config = model_signing.hashing.Config()
    algorithm = _MS_HASH[s.hash_type]
    if s.method == "shards":
        return config.use_shard_serialization(hashing_algorithm=algorithm, shard_size=s.shard_size)
    return config.use_file_serialization(hashing_algorithm=algorithm)


def _statement(sig: Path) -> dict[str, Any]:
    statement: dict[str, Any] = json.loads(
        base64.b64decode(json.loads(sig.read_text())["dsseEnvelope"]["payload"])
    )
    return statement


@pytest.mark.parametrize("name", SERIALIZATIONS)
def test_guard_key_signature_verifies_with_model_signing(
    model_dir: Path, keypair: KeyPair, name: str
) -> None:
    sign_model(model_dir, KeySigner.from_file(keypair.private_key), serialization=SERIALIZATIONS[name])
    sig = model_dir / "model.sig"  # inside the model: recorded in ignore_paths, as model-signing does
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keypair.public_key).verify(
        model_dir, sig
    )
    (model_dir / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"config\.json"):
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keypair.public_key).verify(
            model_dir, sig
        )


@pytest.mark.parametrize("name", SERIALIZATIONS)
def test_model_signing_key_signature_verifies_with_guard(
    model_dir: Path, keypair: KeyPair, tmp_path: Path, name: str
) -> None:
    s = SERIALIZATIONS[name]
    sig = tmp_path / "ms.sig"
    (
        model_signing.signing.Config()
        .use_elliptic_key_signer(private_key=keypair.private_key)
        .set_hashing_config(_ms_hashing(s))
        .sign(model_dir, sig)
    )
    verified = verify_model(model_dir, sig, KeyVerifier.from_file(keypair.public_key))
    assert verified.manifest.serialization.method == s.method
    assert verified.signer.identity == keypair.fingerprint
    (model_dir / "a" / "b").write_text("tampered")
    with pytest.raises(IntegrityError) as info:
        verify_model(model_dir, sig, KeyVerifier.from_file(keypair.public_key))
    assert info.value.changed == ("a/b",)


def test_model_signing_signature_inside_the_model(model_dir: Path, keypair: KeyPair) -> None:
    sig = model_dir / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=keypair.private_key).sign(
        model_dir, sig
    )
    verify_model(model_dir, sig, KeyVerifier.from_file(keypair.public_key))


def test_same_statement_as_model_signing(model_dir: Path, keypair: KeyPair, tmp_path: Path) -> None:
    for name, s in SERIALIZATIONS.items():
        ours, theirs = tmp_path / f"{name}.guard.sig", tmp_path / f"{name}.ms.sig"
        sign_model(model_dir, KeySigner.from_file(keypair.private_key), serialization=s, signature_path=ours)
        (
            model_signing.signing.Config()
            .use_elliptic_key_signer(private_key=keypair.private_key)
            .set_hashing_config(_ms_hashing(s))
            .sign(model_dir, theirs)
        )
        a, b = _statement(ours), _statement(theirs)
        assert a["subject"] == b["subject"], name  # same name, same subject digest: same order
        assert a["predicate"]["resources"] == b["predicate"]["resources"], name
        sa, sb = a["predicate"]["serialization"], b["predicate"]["serialization"]
        assert sorted(sa.pop("ignore_paths")) == sorted(sb.pop("ignore_paths")), name
        assert sa == sb, name  # shard_size 1000 == 1000.0


def test_guard_certificate_signature_verifies_with_model_signing(model_dir: Path, pki: Pki) -> None:
    for s in (Serialization(), Serialization(method="shards", shard_size=4096)):
        sign_model(
            model_dir, CertificateSigner.from_files(pki.leaf_key, pki.leaf, pki.chain), serialization=s
        )
        (
            model_signing.verifying.Config()
            .use_certificate_verifier(certificate_chain=[pki.root])
            .verify(model_dir, model_dir / "model.sig")
        )


def test_model_signing_certificate_signature_verifies_with_guard(
    model_dir: Path, pki: Pki, tmp_path: Path
) -> None:
    for i, s in enumerate((Serialization(), Serialization(method="shards", shard_size=4096))):
        sig = tmp_path / f"ms-{i}.sig"
        (
            model_signing.signing.Config()
            .use_certificate_signer(
                private_key=pki.leaf_key, signing_certificate=pki.leaf, certificate_chain=[pki.chain]
            )
            .set_hashing_config(_ms_hashing(s))
            .sign(model_dir, sig)
        )
        verified = verify_model(model_dir, sig, CertificateVerifier.from_file(pki.root))
        assert verified.signer.method == "certificate"
        assert "ml-team@example.com" in verified.signer.identity


def test_legacy_v02_signature_verifies(
    model_dir: Path, keypair: KeyPair, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hand-built v0.2 signature: one subject per file, legacy predicate, v0.2's buggy PAE."""
    import hashlib

    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and ".git" not in p.parts)
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {
                "name": p.relative_to(model_dir).as_posix(),
                "digest": {"sha256": hashlib.sha256(p.read_bytes()).hexdigest()},
            }
            for p in files
        ],
        "predicateType": LEGACY_PREDICATE_TYPE,
        "predicate": {},
    }
    payload = json.dumps(statement).encode()
    key = load_private_key(keypair.private_key)
    from cryptography.hazmat.primitives.asymmetric import ec

    sig = key.sign(pae_legacy(IN_TOTO_PAYLOAD_TYPE, payload), ec.ECDSA(ecdsa_hash(key.public_key())))
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": public_key_hint(key.public_key())}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": b64encode(payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": b64encode(sig)}],
        },
    }
    path = tmp_path / "v02.sig"
    path.write_text(json.dumps(bundle))
    verified = verify_model(model_dir, path, KeyVerifier.from_file(keypair.public_key))
    assert verified.statement["predicateType"] == LEGACY_PREDICATE_TYPE
    assert "v0.2" in caplog.text
    (model_dir / "config.json").write_text("{}")
    with pytest.raises(IntegrityError, match=r"config\.json"):
        verify_model(model_dir, path, KeyVerifier.from_file(keypair.public_key))
