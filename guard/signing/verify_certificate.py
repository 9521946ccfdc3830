"""Verifying backend: a certificate chain to trusted roots (OMS "certificate" method).

1. Read the leaf and intermediates from ``verificationMaterial.x509CertificateChain``.
2. Build and verify the path from the leaf to one of the given roots (``cryptography.x509.
   verification``, the RFC 5280 path builder sigstore-python uses), at the current time: there is no
   trusted timestamp in such a bundle, so an expired certificate is refused. The Web PKI extension
   profile applies (CA basicConstraints and keyCertSign, AKI...), except that the client-auth EKU a
   client verifier demands by default is not: code signing is what step 3 requires.
3. Check the leaf may sign code (KeyUsage digitalSignature / ExtendedKeyUsage codeSigning).
4. Check the DSSE signature with the leaf's ECDSA key.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as PathError

from guard.errors import (
    BundleFormatError,
    KeyMaterialError,
    SignatureMismatch,
    UntrustedCertificate,
    VerificationError,
)
from guard.signing.bundle import envelope_of
from guard.signing.certificates import describe_certificate, load_pem_certificates, signing_usage_problem
from guard.signing.dsse import b64decode
from guard.signing.keys import SUPPORTED_CURVES, describe_key, public_key_fingerprint
from guard.signing.types import SignerInfo, SigningMethod, SimpleSignature
from guard.signing.verify_key import verify_dsse_signature

_FIELD = "verificationMaterial.x509CertificateChain"


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _ca_key_usage(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("a CA's KeyUsage must allow keyCertSign")


def _relaxed(policy: ExtensionPolicy, *, ca: bool) -> ExtensionPolicy:
    """The Web PKI profile (CA basicConstraints, path length, name constraints...) without what
    code-signing PKIs need not have, as OpenSSL's path building (which guard used before) does not
    require it: the clientAuth EKU a client verifier demands (codeSigning is checked by
    ``signing_usage_problem``), a subjectAltName (a signer may be named by its subject alone), the
    authorityKeyIdentifier, and a CA's KeyUsage (``openssl req -x509`` makes roots without one; when
    present it must allow keyCertSign)."""
    policy = (
        policy.may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    )
    return policy.may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _ca_key_usage) if ca else policy


def _reason(leaf: x509.Certificate, err: Exception) -> str:
    """The path builder's error, led by what a user can act on."""
    now = datetime.datetime.now(datetime.UTC)
    if leaf.not_valid_after_utc < now:
        return f"the certificate has expired (on {leaf.not_valid_after_utc.isoformat()}; {err})"
    if leaf.not_valid_before_utc > now:
        return f"the certificate is not yet valid (from {leaf.not_valid_before_utc.isoformat()}; {err})"
    if str(err).endswith("no interior errors"):
        return (
            "no chain from it to a trusted root (an intermediate missing from the bundle, or issued "
            f"by another CA; {err})"
        )
    return str(err)


class CertificateVerifier:
    """Trusts signatures whose certificate chains to one of ``roots``."""

    method: SigningMethod = "certificate"

    def __init__(self, roots: list[x509.Certificate]) -> None:
        if not roots:
            raise KeyMaterialError("no trusted root certificate given")
        self._roots = roots
        # As OpenSSL's store without PARTIAL_CHAIN: only self-signed certificates anchor trust; an
        # intermediate given among the roots may complete a path but is no trust anchor itself.
        self._anchors = [c for c in roots if _self_signed(c)]
        self._extra = [c for c in roots if not _self_signed(c)]

    @classmethod
    def from_file(cls, roots_pem_path: Path) -> CertificateVerifier:
        return cls(load_pem_certificates([roots_pem_path], "certificate roots"))

    def _chain(self, bundle: Mapping[str, Any]) -> list[x509.Certificate]:
        material = bundle.get("verificationMaterial")
        if not isinstance(material, Mapping) or _FIELD.split(".")[1] not in material:
            found = (
                "publicKey (signed with a bare key: verify with --key)"
                if isinstance(material, Mapping) and "publicKey" in material
                else "a Sigstore certificate (keyless: verify with --identity and --issuer)"
                if isinstance(material, Mapping) and "certificate" in material
                else "nothing"
            )
            raise BundleFormatError(
                f"{_FIELD}: missing: expected the signing certificate chain, found {found}", field=_FIELD
            )
        chain = material["x509CertificateChain"]
        certs = chain.get("certificates") if isinstance(chain, Mapping) else None
        if not isinstance(certs, list) or not certs:
            raise BundleFormatError(
                f"{_FIELD}.certificates: expected a non-empty list", field=f"{_FIELD}.certificates"
            )
        out = []
        for i, item in enumerate(certs):
            field = f"{_FIELD}.certificates[{i}].rawBytes"
            der = b64decode(item.get("rawBytes") if isinstance(item, Mapping) else None, field)
            try:
                out.append(x509.load_der_x509_certificate(der))
            except ValueError as err:
                raise BundleFormatError(f"{field}: not a DER X.509 certificate ({err})", field=field) from err
        return out

    def _verify_path(self, leaf: x509.Certificate, intermediates: list[x509.Certificate]) -> x509.Certificate:
        if not self._anchors:
            raise UntrustedCertificate(
                f"the signing certificate {describe_certificate(leaf)} is not trusted: none of the given "
                "roots is self-signed (an intermediate CA is no trust anchor: give its root): "
                f"{', '.join(r.subject.rfc4514_string() for r in self._roots)}"
            )
        verifier = (
            PolicyBuilder()
            .store(Store(self._anchors))
            .time(datetime.datetime.now(datetime.UTC))
            .extension_policies(
                ca_policy=_relaxed(ExtensionPolicy.webpki_defaults_ca(), ca=True),
                ee_policy=_relaxed(ExtensionPolicy.webpki_defaults_ee(), ca=False),
            )
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, [*intermediates, *self._extra])
        except (PathError, x509.UnsupportedGeneralNameType) as err:
            raise UntrustedCertificate(
                f"the signing certificate {describe_certificate(leaf)} is not trusted: {_reason(leaf, err)} "
                f"(trusted roots: {', '.join(r.subject.rfc4514_string() for r in self._roots)})"
            ) from err
        return verified.chain[-1]

    def verify_bundle(self, bundle: Mapping[str, Any]) -> tuple[bytes, SignerInfo]:
        # 1. The chain the bundle carries.
        chain = self._chain(bundle)
        leaf = chain[0]
        # 2. Path to a trusted root, now.
        root = self._verify_path(leaf, chain[1:])
        # 3. The leaf may sign.
        problem = signing_usage_problem(leaf)
        if problem:
            raise UntrustedCertificate(
                f"the signing certificate {describe_certificate(leaf)} may not sign: {problem}"
            )
        key = leaf.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in SUPPORTED_CURVES:
            raise VerificationError(
                f"the signing certificate holds {describe_key(key)}; expected an ECDSA P-256/P-384/P-521 key"
            )
        # 4. The DSSE signature (model-signing v0.2 signed legacy PAE with SHA-256 whatever the curve).
        envelope = envelope_of(bundle)
        verify_dsse_signature(
            key, envelope.signatures[0].sig, envelope.payload_type, envelope.payload, legacy_sha256=True
        )
        fingerprint = public_key_fingerprint(key)
        return envelope.payload, SignerInfo(
            method="certificate",
            identity=describe_certificate(leaf),
            issuer=leaf.issuer.rfc4514_string(),
            key_fingerprint=fingerprint,
            details={
                "serial": format(leaf.serial_number, "x"),
                "not_before": leaf.not_valid_before_utc.isoformat(),
                "not_after": leaf.not_valid_after_utc.isoformat(),
                "root": root.subject.rfc4514_string(),
                "certificate_sha256": leaf.fingerprint(hashes.SHA256()).hex(),
            },
        )

    def verify_simple_signing(self, signature: SimpleSignature) -> SignerInfo:
        """A cosign simple-signing signature made with a certificate (``cosign sign
        --certificate --certificate-chain``): the certificate and chain annotations lead to one of
        the roots now, the leaf may sign, and the signature over the payload verifies."""
        from guard.signing.cosign_key import verify_payload_signature  # noqa: PLC0415

        if not signature.certificate:
            raise BundleFormatError(
                f"cosign signature {signature.where} carries no dev.sigstore.cosign/certificate: it was "
                "signed with a bare key (verify it with a key authority)",
                field="dev.sigstore.cosign/certificate",
            )
        pem = (signature.certificate + "\n" + (signature.chain or "")).encode()
        try:
            chain = x509.load_pem_x509_certificates(pem)
        except ValueError as err:
            raise BundleFormatError(
                f"cosign signature {signature.where}: the certificate annotations are not PEM ({err})"
            ) from err
        leaf = chain[0]
        root = self._verify_path(leaf, chain[1:])
        problem = signing_usage_problem(leaf)
        if problem:
            raise UntrustedCertificate(
                f"the signing certificate {describe_certificate(leaf)} may not sign: {problem}"
            )
        key = leaf.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not verify_payload_signature(
            key, signature.signature, signature.payload
        ):
            raise SignatureMismatch(
                f"cosign signature {signature.where} does not verify with its certificate's key"
            )
        return SignerInfo(
            method="certificate",
            identity=describe_certificate(leaf),
            issuer=leaf.issuer.rfc4514_string(),
            key_fingerprint=public_key_fingerprint(key),
            details={
                "root": root.subject.rfc4514_string(),
                "certificate_sha256": leaf.fingerprint(hashes.SHA256()).hex(),
            },
        )
