"""A throwaway X.509 PKI for tests and demos: root CA -> intermediate CA -> code-signing leaf.

``make_pki(directory)`` writes PEM files and returns their paths. Options let tests build the bad
cases: a leaf without code-signing usage, an expired leaf, a leaf of another root.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    root: Path  # root CA certificate (the verifier's --certificate-roots)
    chain: Path  # intermediate CA certificate (the signer's --certificate-chain)
    leaf: Path  # signing certificate (--certificate)
    leaf_key: Path  # its private key (--key)

    def signing_options(self) -> list[str]:
        """The CLI options that sign with the leaf certificate."""
        return [
            "--certificate",
            str(self.leaf),
            "--certificate-chain",
            str(self.chain),
            "--key",
            str(self.leaf_key),
        ]


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "guard test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    code_signing: bool = True,
    email: str | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        usage = x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(
            digital_signature=code_signing,
            content_commitment=False,
            key_encipherment=not code_signing,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )
        eku = [ExtendedKeyUsageOID.CODE_SIGNING] if code_signing else [ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(usage, critical=True).add_extension(
            x509.ExtendedKeyUsage(eku), critical=False
        )
        if email:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False
            )
    if issuer_key is not key:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def self_signed_ca(cn: str, *, days: int = 30) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed P-256 CA (its key and certificate) valid from five minutes ago for ``days``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = _cert(
        cn,
        key,
        _name(cn),
        key,
        ca=True,
        not_before=now - datetime.timedelta(minutes=5),
        not_after=now + datetime.timedelta(days=days),
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(
    directory: Path,
    *,
    code_signing: bool = True,
    leaf_expired: bool = False,
    curve: ec.EllipticCurve | None = None,
    email: str | None = "ml-team@example.com",
    prefix: str = "",
) -> Pki:
    """Write root.pem, chain.pem, leaf.pem and leaf-key.pem (unencrypted) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    year = datetime.timedelta(days=365)
    root_key = ec.generate_private_key(ec.SECP384R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(curve or ec.SECP256R1())
    root_name = _name(f"{prefix}guard test root CA")
    root = _cert(
        f"{prefix}guard test root CA",
        root_key,
        root_name,
        root_key,
        ca=True,
        not_before=now - year,
        not_after=now + 10 * year,
    )
    inter = _cert(
        f"{prefix}guard test intermediate CA",
        inter_key,
        root.subject,
        root_key,
        ca=True,
        not_before=now - year,
        not_after=now + 5 * year,
    )
    if leaf_expired:
        nb, na = now - 2 * year, now - datetime.timedelta(days=1)
    else:
        nb, na = now - datetime.timedelta(minutes=5), now + year
    leaf = _cert(
        f"{prefix}model signer",
        leaf_key,
        inter.subject,
        inter_key,
        ca=False,
        not_before=nb,
        not_after=na,
        code_signing=code_signing,
        email=email,
    )
    pki = Pki(
        directory / f"{prefix}root.pem",
        directory / f"{prefix}chain.pem",
        directory / f"{prefix}leaf.pem",
        directory / f"{prefix}leaf-key.pem",
    )
    pki.root.write_bytes(_pem(root))
    pki.chain.write_bytes(_pem(inter))
    pki.leaf.write_bytes(_pem(leaf))
    pki.leaf_key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pki.leaf_key.chmod(0o600)
    return pki
