"""Certificate path validation (cryptography.x509.verification): what a code-signing PKI made with
common tools passes, what no CA may do is refused."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from guard.errors import UntrustedCertificate
from guard.signing.verify_certificate import CertificateVerifier

NOW = datetime.datetime.now(datetime.UTC)


def _cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    key_usage: bool = True,
    cert_sign: bool = True,
) -> tuple[x509.Certificate, x509.Name]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, issuer_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage:
        usage = x509.KeyUsage(
            digital_signature=not ca,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca and cert_sign,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()), name


def _chain(**root_kw: bool) -> tuple[x509.Certificate, x509.Certificate]:
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root, root_name = _cert("root", root_key, None, ca=True, **root_kw)
    leaf, _ = _cert("signer", leaf_key, (root_name, root_key), ca=False)
    return root, leaf


def test_a_root_without_key_usage_as_openssl_req_makes_it_anchors_trust() -> None:
    root, leaf = _chain(key_usage=False)
    assert CertificateVerifier([root])._verify_path(leaf, []) == root


def test_a_ca_whose_key_usage_forbids_certificate_signing_is_refused() -> None:
    root, leaf = _chain(cert_sign=False)
    with pytest.raises(UntrustedCertificate, match="keyCertSign"):
        CertificateVerifier([root])._verify_path(leaf, [])
