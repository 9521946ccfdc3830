"""X.509 helpers shared by the certificate signing and verifying backends."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from guard.errors import KeyMaterialError

log = logging.getLogger(__name__)


def load_pem_certificates(paths: Sequence[Path], what: str) -> list[x509.Certificate]:
    """Every certificate of the given PEM files, in order; KeyMaterialError naming the file."""
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except FileNotFoundError as err:
            raise KeyMaterialError(f"{what} {path} does not exist") from err
        except OSError as err:
            raise KeyMaterialError(f"cannot read {what} {path}: {err.strerror}") from err
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise KeyMaterialError(f"{what} {path}: expected PEM certificates (-----BEGIN CERTIFICATE-----)")
        try:
            certs.extend(x509.load_pem_x509_certificates(data))
        except ValueError as err:
            raise KeyMaterialError(f"{what} {path}: not a valid PEM certificate ({err})") from err
    return certs


def signing_usage_problem(cert: x509.Certificate) -> str | None:
    """Why ``cert`` may not sign code, or None. It needs KeyUsage digitalSignature or the
    code-signing extended key usage (as model-signing requires); a KeyUsage without
    digitalSignature or an ExtendedKeyUsage without codeSigning is refused outright."""
    ku_ok = eku_ok = None
    with contextlib.suppress(x509.ExtensionNotFound):
        ku_ok = cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        eku_ok = ExtendedKeyUsageOID.CODE_SIGNING in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
    except x509.ExtensionNotFound:
        pass
    if ku_ok is False:
        return "its KeyUsage does not allow digitalSignature"
    if eku_ok is False:
        return "its ExtendedKeyUsage does not include codeSigning"
    if ku_ok is None and eku_ok is None:
        return "it has neither a KeyUsage (digitalSignature) nor an ExtendedKeyUsage (codeSigning) extension"
    return None


def describe_certificate(cert: x509.Certificate) -> str:
    """The subject, with the SAN values when present (what a user recognizes)."""
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return subject
    names = [str(v) for v in san.get_values_for_type(x509.RFC822Name)]
    names += [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    names += [str(v) for v in san.get_values_for_type(x509.DNSName)]
    return f"{subject} (SAN: {', '.join(names)})" if names else subject


def common_name(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()
