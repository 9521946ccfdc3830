"""The cosign paths of the verifying backends that the cosign fixtures do not exercise: a
certificate-signed simple signature (``cosign sign --certificate --certificate-chain``) and a
key-signed v3 bundle naming its key by cosign's ``publicKey.hint`` (base64 SHA-256 of the DER key)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from guard.errors import SignatureMismatch, UntrustedCertificate
from guard.signing import CertificateVerifier, KeySigner, KeyVerifier, sign_statement, verify_statement
from guard.signing.keys import KeyPair
from guard.signing.types import SimpleSignature

PAYLOAD = json.dumps(
    {
        "critical": {
            "identity": {"docker-reference": "registry.example/app"},
            "image": {"docker-manifest-digest": "sha256:" + "a" * 64},
            "type": "cosign container image signature",
        },
        "optional": None,
    },
    separators=(",", ":"),
).encode()


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    code_signing: bool = True,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        ).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate, x509.Certificate]:
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _cert("guard test root", root_key, None, ca=True)
    leaf = _cert("release signer", leaf_key, (root.subject, root_key), ca=False)
    roots = tmp_path / "roots.pem"
    roots.write_text(_pem(root))
    return roots, leaf_key, leaf, root


def test_certificate_signed_simple_signature(
    pki: tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate, x509.Certificate],
) -> None:
    roots, leaf_key, leaf, root = pki
    sig = SimpleSignature(
        PAYLOAD, leaf_key.sign(PAYLOAD, ec.ECDSA(hashes.SHA256())), "test layers[0]", _pem(leaf), _pem(root)
    )
    signer = CertificateVerifier.from_file(roots).verify_simple_signing(sig)
    assert signer.method == "certificate" and "release signer" in signer.identity
    tampered = SimpleSignature(PAYLOAD + b" ", sig.signature, sig.where, sig.certificate, sig.chain)
    with pytest.raises(SignatureMismatch, match="does not verify with its certificate's key"):
        CertificateVerifier.from_file(roots).verify_simple_signing(tampered)


def test_certificate_of_another_root_or_usage_is_refused(
    pki: tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate, x509.Certificate], tmp_path: Path
) -> None:
    _, leaf_key, leaf, root = pki
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_root = tmp_path / "other.pem"
    other_root.write_text(_pem(_cert("another root", other_key, None, ca=True)))
    sig = SimpleSignature(
        PAYLOAD, leaf_key.sign(PAYLOAD, ec.ECDSA(hashes.SHA256())), "t", _pem(leaf), _pem(root)
    )
    with pytest.raises(UntrustedCertificate, match="is not trusted"):
        CertificateVerifier.from_file(other_root).verify_simple_signing(sig)
    root_key = ec.generate_private_key(ec.SECP256R1())
    server_root = _cert("r", root_key, None, ca=True)
    server_leaf = _cert("web", leaf_key, (server_root.subject, root_key), ca=False, code_signing=False)
    (tmp_path / "r.pem").write_text(_pem(server_root))
    bad = SimpleSignature(PAYLOAD, sig.signature, "t", _pem(server_leaf), _pem(server_root))
    with pytest.raises(UntrustedCertificate, match="may not sign"):
        CertificateVerifier.from_file(tmp_path / "r.pem").verify_simple_signing(bad)


def test_key_bundle_with_cosign_hint_verifies(keypair: KeyPair) -> None:
    private, public = keypair.private_key, keypair.public_key
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "", "digest": {"sha256": "b" * 64}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
    }
    bundle = json.loads(sign_statement(statement, KeySigner.from_file(private)))
    key = serialization.load_pem_public_key(public.read_bytes())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    bundle["verificationMaterial"]["publicKey"]["hint"] = base64.b64encode(
        hashlib.sha256(der).digest()
    ).decode()
    assert verify_statement(bundle, KeyVerifier.from_file(public)).predicate_type.endswith("cosign/sign/v1")
    bundle["verificationMaterial"]["publicKey"]["hint"] = base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(SignatureMismatch, match="key mismatch"):
        verify_statement(bundle, KeyVerifier.from_file(public))


def test_certificate_issued_by_a_non_ca_or_anchored_at_an_intermediate_is_refused(
    pki: tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate, x509.Certificate], tmp_path: Path
) -> None:
    """Path validation (cryptography.x509.verification): an end-entity certificate cannot issue
    (basicConstraints CA:FALSE), and an intermediate given as the root anchors nothing."""
    roots, leaf_key, leaf, root = pki
    signer_key = ec.generate_private_key(ec.SECP256R1())
    forged = _cert("forged signer", signer_key, (leaf.subject, leaf_key), ca=False)
    sig = SimpleSignature(
        PAYLOAD, signer_key.sign(PAYLOAD, ec.ECDSA(hashes.SHA256())), "t", _pem(forged), _pem(leaf)
    )
    with pytest.raises(UntrustedCertificate, match="is not trusted"):
        CertificateVerifier.from_file(roots).verify_simple_signing(sig)
    root_key = ec.generate_private_key(ec.SECP256R1())
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("second root", root_key, None, ca=True)
    intermediate = _cert("intermediate", intermediate_key, (root.subject, root_key), ca=True)
    (tmp_path / "intermediate.pem").write_text(_pem(intermediate))
    below = _cert("below", signer_key, (intermediate.subject, intermediate_key), ca=False)
    sig = SimpleSignature(
        PAYLOAD, signer_key.sign(PAYLOAD, ec.ECDSA(hashes.SHA256())), "t", _pem(below), _pem(intermediate)
    )
    with pytest.raises(UntrustedCertificate, match="none of the given roots is self-signed"):
        CertificateVerifier.from_file(tmp_path / "intermediate.pem").verify_simple_signing(sig)
    (tmp_path / "both.pem").write_text(_pem(intermediate) + _pem(root))
    signer = CertificateVerifier.from_file(tmp_path / "both.pem").verify_simple_signing(sig)
    assert signer.details["root"] == "CN=second root"
