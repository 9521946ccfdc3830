"""The verify template (bundle parsing) and the key and certificate backends."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from guard.errors import (
    BundleFormatError,
    KeyMaterialError,
    SignatureMismatch,
    UntrustedCertificate,
    VerificationError,
)
from guard.signing import (
    CertificateSigner,
    CertificateVerifier,
    KeySigner,
    KeyVerifier,
    sign_statement,
    verify_model_bundle,
    verify_statement,
)
from guard.signing.keys import KeyPair, generate_keypair, load_private_key, public_key_fingerprint
from guard.signing.types import OMS_PREDICATE_TYPE
from guard.testing.pki import Pki, make_pki

STATEMENT: dict[str, Any] = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "m", "digest": {"sha256": "ab" * 32}}],
    "predicateType": "https://example.com/test/v1",
    "predicate": {"hello": "world"},
}


def _signed(keypair: KeyPair) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(sign_statement(STATEMENT, KeySigner.from_file(keypair.private_key)))
    return bundle


def _payload(bundle: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return payload


def test_key_round_trip(keypair: KeyPair) -> None:
    bundle = _signed(keypair)
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert _payload(bundle) == STATEMENT
    verified = verify_statement(bundle, KeyVerifier.from_file(keypair.public_key))
    assert verified.statement == STATEMENT
    assert verified.predicate == {"hello": "world"}
    assert verified.signer.method == "key"
    assert verified.signer.identity == keypair.fingerprint
    assert verified.subjects[0].digest == {"sha256": "ab" * 32}


@pytest.mark.parametrize("keyid", ["absent", "", None, "some-key"])
def test_dsse_keyid_absent_empty_or_null(keypair: KeyPair, keyid: object) -> None:
    bundle = _signed(keypair)
    sig = bundle["dsseEnvelope"]["signatures"][0]
    if keyid == "absent":
        del sig["keyid"]
    else:
        sig["keyid"] = keyid
    verify_statement(bundle, KeyVerifier.from_file(keypair.public_key))


def test_other_key_is_a_key_mismatch(keypair: KeyPair, other_keypair: KeyPair) -> None:
    with pytest.raises(SignatureMismatch, match="key mismatch"):
        verify_statement(_signed(keypair), KeyVerifier.from_file(other_keypair.public_key))
    # without the hint, the signature itself fails
    bundle = _signed(keypair)
    del bundle["verificationMaterial"]["publicKey"]["hint"]
    with pytest.raises(SignatureMismatch, match="does not verify with the given key"):
        verify_statement(bundle, KeyVerifier.from_file(other_keypair.public_key))


def test_edited_payload_refused(keypair: KeyPair) -> None:
    bundle = _signed(keypair)
    edited = dict(STATEMENT, predicate={"hello": "mallory"})
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(edited).encode()).decode()
    with pytest.raises(SignatureMismatch):
        verify_statement(bundle, KeyVerifier.from_file(keypair.public_key))


Edit = Callable[[dict[str, Any]], Any]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda b: b.update(mediaType="application/json"), "mediaType"),
        (lambda b: b.pop("mediaType"), "mediaType"),
        (lambda b: b.pop("dsseEnvelope"), "dsseEnvelope"),
        (lambda b: b["dsseEnvelope"].update(payloadType="text/plain"), "dsseEnvelope.payloadType"),
        (lambda b: b["dsseEnvelope"].update(payload="%%%"), "dsseEnvelope.payload"),
        (lambda b: b["dsseEnvelope"].update(signatures=[]), "dsseEnvelope.signatures"),
        (lambda b: b["dsseEnvelope"]["signatures"][0].pop("sig"), "dsseEnvelope.signatures[0].sig"),
        (lambda b: b.pop("verificationMaterial"), "verificationMaterial"),
        (lambda b: b["verificationMaterial"].pop("publicKey"), "verificationMaterial.publicKey"),
    ],
)
def test_malformed_bundle_names_the_field(keypair: KeyPair, edit: Edit, field: str) -> None:
    bundle = _signed(keypair)
    edit(bundle)
    with pytest.raises(BundleFormatError) as info:
        verify_statement(bundle, KeyVerifier.from_file(keypair.public_key))
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json at all", "expected JSON, found something that is not"),
        (b"[1, 2]", "found a JSON list"),
        (b"\xff\xfe", "expected UTF-8 JSON, found an invalid byte"),
    ],
)
def test_not_a_bundle(keypair: KeyPair, data: bytes, message: str) -> None:
    with pytest.raises(BundleFormatError, match=message):
        verify_statement(data, KeyVerifier.from_file(keypair.public_key))


def test_message_signature_bundle_is_not_a_dsse_bundle(keypair: KeyPair) -> None:
    bundle = _signed(keypair)
    bundle["messageSignature"] = bundle.pop("dsseEnvelope")
    with pytest.raises(BundleFormatError, match="found messageSignature"):
        verify_statement(bundle, KeyVerifier.from_file(keypair.public_key))


def test_other_predicate_refused_when_types_given(keypair: KeyPair) -> None:
    with pytest.raises(BundleFormatError, match=f"predicateType: expected {OMS_PREDICATE_TYPE}"):
        verify_statement(
            _signed(keypair), KeyVerifier.from_file(keypair.public_key), predicate_types=[OMS_PREDICATE_TYPE]
        )
    with pytest.raises(BundleFormatError, match="predicateType"):
        verify_model_bundle(json.dumps(_signed(keypair)).encode(), KeyVerifier.from_file(keypair.public_key))


def test_payload_not_an_in_toto_statement(keypair: KeyPair) -> None:
    signer = KeySigner.from_file(keypair.private_key)
    bundle = signer.sign_payload(b'{"_type": "something else"}')
    with pytest.raises(BundleFormatError, match=r"statement\._type"):
        verify_statement(bundle, KeyVerifier.from_file(keypair.public_key))


# --- key material -------------------------------------------------------------------------------


def test_keygen_modes_and_encryption(tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path, "ecdsa-p384", b"s3cret")
    assert pair.private_key.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED" in pair.private_key.read_bytes()
    with pytest.raises(KeyMaterialError, match="encrypted and no passphrase"):
        load_private_key(pair.private_key)
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        load_private_key(pair.private_key, b"nope")
    key = load_private_key(pair.private_key, b"s3cret")
    assert key.curve.name == "secp384r1"
    assert public_key_fingerprint(key) == pair.fingerprint


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    generate_keypair(tmp_path)
    with pytest.raises(Exception, match="already exists"):
        generate_keypair(tmp_path)
    generate_keypair(tmp_path, force=True)


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA 2048-bit"),
        (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "secp256k1"),
    ],
)
def test_wrong_key_types(tmp_path: Path, make: Callable[[], Any], found: str) -> None:
    key = make()
    private = tmp_path / "k.pem"
    public = tmp_path / "k.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyMaterialError, match=found):
        KeySigner.from_file(private)
    with pytest.raises(KeyMaterialError, match=found):
        KeyVerifier.from_file(public)


def test_garbage_key_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(KeyMaterialError, match="expected a PEM file"):
        KeySigner.from_file(tmp_path / "junk.pem")
    with pytest.raises(KeyMaterialError, match="not a PEM public key"):
        KeyVerifier.from_file(tmp_path / "junk.pem")
    with pytest.raises(KeyMaterialError, match="does not exist"):
        KeyVerifier.from_file(tmp_path / "missing.pem")


# --- certificates -------------------------------------------------------------------------------


def _cert_bundle(pki: Pki) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(
        sign_statement(STATEMENT, CertificateSigner.from_files(pki.leaf_key, pki.leaf, pki.chain))
    )
    return bundle


def test_certificate_round_trip(pki: Pki) -> None:
    bundle = _cert_bundle(pki)
    assert len(bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]) == 2
    verified = verify_statement(bundle, CertificateVerifier.from_file(pki.root))
    assert verified.signer.method == "certificate"
    assert "CN=model signer" in verified.signer.identity
    assert "ml-team@example.com" in verified.signer.identity
    assert verified.signer.issuer == "CN=guard test intermediate CA,O=guard test PKI"
    assert verified.signer.details["root"] == "CN=guard test root CA,O=guard test PKI"


def test_certificate_of_another_root_refused(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path, prefix="other ")
    with pytest.raises(UntrustedCertificate, match="no chain from it to a trusted root"):
        verify_statement(_cert_bundle(pki), CertificateVerifier.from_file(other.root))


def test_certificate_chain_missing_intermediate_refused(pki: Pki) -> None:
    bundle = _cert_bundle(pki)
    del bundle["verificationMaterial"]["x509CertificateChain"]["certificates"][1]
    with pytest.raises(UntrustedCertificate, match="no chain from it to a trusted root"):
        verify_statement(bundle, CertificateVerifier.from_file(pki.root))


def test_certificate_without_code_signing_refused(tmp_path: Path) -> None:
    bad = make_pki(tmp_path, code_signing=False)
    with pytest.raises(KeyMaterialError, match="cannot sign: its KeyUsage does not allow digitalSignature"):
        CertificateSigner.from_files(bad.leaf_key, bad.leaf, bad.chain)


def test_expired_certificate_refused(tmp_path: Path) -> None:
    old = make_pki(tmp_path, leaf_expired=True)
    with pytest.raises(KeyMaterialError, match="expired on"):
        CertificateSigner.from_files(old.leaf_key, old.leaf, old.chain)


def test_certificate_key_mismatch(pki: Pki, keypair: KeyPair) -> None:
    with pytest.raises(KeyMaterialError, match="is not the private key's"):
        CertificateSigner.from_files(keypair.private_key, pki.leaf, pki.chain)


def test_wrong_verification_material_kind(pki: Pki, keypair: KeyPair) -> None:
    with pytest.raises(BundleFormatError, match="found publicKey"):
        verify_statement(_signed(keypair), CertificateVerifier.from_file(pki.root))
    with pytest.raises(BundleFormatError, match="found x509CertificateChain"):
        verify_statement(_cert_bundle(pki), KeyVerifier.from_file(keypair.public_key))


def test_certificate_rawbytes_garbage(pki: Pki) -> None:
    bundle = _cert_bundle(pki)
    bundle["verificationMaterial"]["x509CertificateChain"]["certificates"][0]["rawBytes"] = "AAAA"
    with pytest.raises(BundleFormatError) as info:
        verify_statement(bundle, CertificateVerifier.from_file(pki.root))
    assert info.value.field == "verificationMaterial.x509CertificateChain.certificates[0].rawBytes"


def test_certificate_roots_file_errors(tmp_path: Path) -> None:
    (tmp_path / "roots.pem").write_text("nothing")
    with pytest.raises(KeyMaterialError, match="expected PEM certificates"):
        CertificateVerifier.from_file(tmp_path / "roots.pem")
    assert issubclass(SignatureMismatch, VerificationError)


def test_older_bundle_with_raw_public_key(keypair: KeyPair, other_keypair: KeyPair) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    bundle = _signed(keypair)
    der = load_pem_public_key(keypair.public_key.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bundle["verificationMaterial"]["publicKey"] = {"rawBytes": base64.b64encode(der).decode()}
    verify_statement(bundle, KeyVerifier.from_file(keypair.public_key))
    with pytest.raises(SignatureMismatch, match="key mismatch"):
        verify_statement(bundle, KeyVerifier.from_file(other_keypair.public_key))


def test_expired_or_non_code_signing_certificate_refused_when_verifying(tmp_path: Path) -> None:
    """Bundles made by a signer that does not check (model-signing does not): guard refuses them."""
    import model_signing

    from guard.signing import verify_model

    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    for name, pki_kw, message in [
        ("expired", {"leaf_expired": True}, "the certificate has expired"),
        ("server", {"code_signing": False}, "may not sign: its KeyUsage does not allow digitalSignature"),
    ]:
        bad = make_pki(tmp_path / name, **pki_kw)  # type: ignore[arg-type]
        sig = tmp_path / f"{name}.sig"
        model_signing.signing.Config().use_certificate_signer(
            private_key=bad.leaf_key, signing_certificate=bad.leaf, certificate_chain=[bad.chain]
        ).sign(model, sig)
        with pytest.raises(UntrustedCertificate, match=message):
            verify_model(model, sig, CertificateVerifier.from_file(bad.root))


def test_statement_with_values_outside_rfc8785_still_signs(keypair: KeyPair) -> None:
    statement = dict(STATEMENT, predicate={"parameters": 2**60, "nan_free": 0.5})
    bundle = sign_statement(statement, KeySigner.from_file(keypair.private_key))
    assert (
        verify_statement(bundle, KeyVerifier.from_file(keypair.public_key)).predicate["parameters"] == 2**60
    )
