"""Verifying backend: Sigstore keyless (OMS "sigstore" method), with sigstore-python's Verifier.

Identity policy: the certificate's OIDC issuer (extension 1.3.6.1.4.1.57264.1.8, else .1.1) must
equal the expected issuer, and one of its SANs (email, URI or Sigstore other-name) must equal the
expected identity, or match the expected regular expression in full (``re.fullmatch``: anchors are
implied, so ``.*@example\\.com`` cannot match ``x@example.com.evil.io``).

sigstore-python does the cryptography: certificate chain to the trusted Fulcio CA at the log's
integration time, embedded SCT against the CT log keys, the identity policy, Merkle inclusion proof
and signed checkpoint, signed entry timestamp, DSSE signature, and consistency of the log entry with
the envelope. Its errors are mapped to guard's tree with the reason.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sigstore.errors import CertValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier

from guard.errors import (
    BundleFormatError,
    ConfigError,
    GuardError,
    IdentityMismatch,
    SignatureMismatch,
    TransparencyLogError,
    UntrustedCertificate,
    UsageError,
    VerificationError,
)
from guard.signing.sigstore_trust import load_trusted_root, public_good_trust_config
from guard.signing.types import IN_TOTO_PAYLOAD_TYPE, SignerInfo, SigningMethod, SimpleSignature

log = logging.getLogger(__name__)

_OIDC_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OIDC_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_SIGSTORE_OTHERNAME = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
# Fulcio extensions worth reporting (DER UTF8String values), by name.
_DETAIL_EXTENSIONS = {
    "build_signer_uri": "1.3.6.1.4.1.57264.1.9",
    "build_signer_digest": "1.3.6.1.4.1.57264.1.10",
    "runner_environment": "1.3.6.1.4.1.57264.1.11",
    "source_repository_uri": "1.3.6.1.4.1.57264.1.12",
    "source_repository_digest": "1.3.6.1.4.1.57264.1.13",
    "source_repository_ref": "1.3.6.1.4.1.57264.1.14",
    "build_trigger": "1.3.6.1.4.1.57264.1.20",
    "run_invocation_uri": "1.3.6.1.4.1.57264.1.21",
}


def _der_utf8(value: bytes) -> str | None:
    """The text of a DER UTF8String (tag 0x0C), or None if ``value`` is not one."""
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length, offset = value[1], 2
    if length & 0x80:
        size = length & 0x7F
        length, offset = int.from_bytes(value[2 : 2 + size], "big"), 2 + size
    body = value[offset:]
    if len(body) != length:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _extension_bytes(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer a Fulcio certificate states (.1.8, else the deprecated .1.1); raises
    IdentityMismatch if the two extensions disagree."""
    raw_v2 = _extension_bytes(cert, _OIDC_ISSUER_V2)
    raw_v1 = _extension_bytes(cert, _OIDC_ISSUER_V1)
    v2 = _der_utf8(raw_v2) if raw_v2 is not None else None
    v1 = raw_v1.decode("utf-8", "replace") if raw_v1 is not None else None
    if v1 is not None and v2 is not None and v1 != v2:
        raise IdentityMismatch(
            f"the certificate states two different OIDC issuers: {v2!r} (1.3.6.1.4.1.57264.1.8) and "
            f"{v1!r} (1.3.6.1.4.1.57264.1.1)",
            found=f"{v2} / {v1}",
        )
    return v2 if v2 is not None else v1


def certificate_identities(cert: x509.Certificate) -> list[str]:
    """The SANs a Fulcio certificate binds: emails, URIs and Sigstore other-names."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = [*san.get_values_for_type(x509.RFC822Name)]
    names += san.get_values_for_type(x509.UniformResourceIdentifier)
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == _SIGSTORE_OTHERNAME:
            names.append(_der_utf8(other.value) or other.value.decode("utf-8", "replace"))
    return names


class _IdentityPolicy:
    """A sigstore VerificationPolicy that raises guard's IdentityMismatch with expected vs found.

    sigstore-python calls it after the certificate chain and SCT have been verified, so an
    identity is only ever reported for a certificate the trust root vouches for."""

    def __init__(self, issuer: str, identity: str | None, pattern: re.Pattern[str] | None) -> None:
        self.issuer = issuer
        self.identity = identity
        self.pattern = pattern
        self.expected = identity if identity is not None else f"/{pattern.pattern if pattern else ''}/"
        self.matched: str | None = None

    def verify(self, cert: x509.Certificate) -> None:
        found_issuer = certificate_issuer(cert)
        names = certificate_identities(cert)
        shown = ", ".join(names) or "(none)"
        if found_issuer != self.issuer:
            raise IdentityMismatch(
                f"OIDC issuer mismatch: expected {self.issuer!r}, found {found_issuer!r} (signer {shown})",
                expected=self.issuer,
                found=found_issuer,
            )
        for name in names:
            if (self.identity is not None and name == self.identity) or (
                self.pattern is not None and self.pattern.fullmatch(name)
            ):
                self.matched = name
                return
        how = "matching" if self.pattern is not None else ""
        raise IdentityMismatch(
            f"signer identity mismatch: expected {how + ' ' if how else ''}{self.expected}, "
            f"found {shown} (issuer {found_issuer})",
            expected=self.expected,
            found=shown,
        )


def _untrusted(msg: str, bundle: Bundle) -> UntrustedCertificate:
    cert = bundle.signing_certificate
    issued_by = cert.issuer.rfc4514_string() or "(empty issuer)"
    if "not valid at validation time" in msg or msg.startswith("invalid signing cert"):
        logged = bundle.log_entry._inner.integrated_time
        when = datetime.fromtimestamp(logged, UTC).isoformat() if logged else "signing time"
        reason = (
            f"it was not valid when the transparency log recorded the signature ({when}; the "
            f"certificate is valid from {cert.not_valid_before_utc.isoformat()} to "
            f"{cert.not_valid_after_utc.isoformat()})"
        )
    elif msg.startswith("failed to verify SCT"):
        reason = f"its certificate-transparency proof (SCT) is not signed by a trusted CT log ({msg})"
    elif msg.startswith("failed to build"):
        reason = f"it does not chain to a Fulcio CA of the trust root (issued by {issued_by}; {msg})"
    else:
        reason = msg
    return UntrustedCertificate(f"the signing certificate is not trusted: {reason}")


def _map_sigstore_error(err: Exception, bundle: Bundle) -> GuardError:
    """Turn a sigstore-python verification failure into guard's error with the reason."""
    msg = str(err)
    if isinstance(err, CertValidationError) or msg.startswith(
        ("failed to verify SCT", "invalid signing cert", "Key usage", "Extended usage")
    ):
        return _untrusted(msg, bundle)
    if msg.startswith("invalid log entry"):
        detail = msg.removeprefix("invalid log entry: ")
        if detail.startswith(
            ("inclusion proof contains invalid root hash:", "inclusion proof has wrong size")
        ):
            return TransparencyLogError(
                "transparency log: the Merkle inclusion proof does not lead to the logged root hash "
                "(the entry is not proven to be in the log)"
            )
        if detail.startswith("SET:"):
            return TransparencyLogError(
                "transparency log: the signed entry timestamp (inclusion promise) is not a valid "
                "signature of the trusted log over this entry"
            )
        return TransparencyLogError(
            "transparency log: the checkpoint (signed tree head) is not signed by the trusted log "
            f"key or does not match the inclusion proof ({detail[:300]})"
        )
    if msg.startswith(("not enough sources of verified time", "Integrated time", "Unsupported DSSE log")) or (
        "log entry" in msg
    ):
        return TransparencyLogError(f"transparency log: {msg}")
    if msg.startswith("DSSE:"):
        return SignatureMismatch(
            "the DSSE signature does not verify with the signing certificate's key: the signed "
            f"statement was modified after signing ({msg})"
        )
    if "DSSE envelope" in msg:
        return BundleFormatError(f"dsseEnvelope: {msg}", field="dsseEnvelope")
    return VerificationError(f"keyless verification failed: {msg}")


def _check_material(bundle: Mapping[str, Any]) -> None:
    """Name the field when a bundle is not a keyless one, before sigstore-python parses it."""
    material = bundle.get("verificationMaterial")
    if not isinstance(material, Mapping):
        raise BundleFormatError("verificationMaterial: missing", field="verificationMaterial")
    if "certificate" not in material:
        if "publicKey" in material:
            hint = "this signature was made with a key; verify it with --key"
        elif "x509CertificateChain" in material:
            hint = "this signature was made with a certificate chain; verify it with --certificate-roots"
        else:
            hint = "not a keyless (Sigstore) signature"
        raise BundleFormatError(
            f"verificationMaterial.certificate: missing ({hint})", field="verificationMaterial.certificate"
        )
    entries = material.get("tlogEntries")
    if not isinstance(entries, list) or len(entries) != 1:
        found = f"{len(entries)} entries" if isinstance(entries, list) else "none"
        raise BundleFormatError(
            f"verificationMaterial.tlogEntries: expected exactly one transparency log entry, found {found}",
            field="verificationMaterial.tlogEntries",
        )
    if "dsseEnvelope" not in bundle:
        raise BundleFormatError("dsseEnvelope: missing (not a DSSE bundle)", field="dsseEnvelope")


def _parse(bundle: Mapping[str, Any]) -> Bundle:
    _check_material(bundle)
    try:
        return Bundle.from_json(json.dumps(bundle))
    except (SigstoreError, ValueError, TypeError, KeyError) as err:
        raise BundleFormatError(f"not a valid Sigstore keyless bundle: {err}") from err


class SigstoreVerifier:
    """Verifies keyless bundles against a Sigstore trust root and an expected identity."""

    method: SigningMethod = "keyless"

    def __init__(
        self,
        issuer: str,
        identity: str | None = None,
        identity_regex: str | None = None,
        trust_config: Path | None = None,
        offline: bool = False,
    ) -> None:
        if (identity is None) == (identity_regex is None):
            raise UsageError(
                "keyless verification needs exactly one of --identity (the exact signer, e.g. an "
                "email or a workflow URI) or --identity-regex"
            )
        if not issuer:
            raise UsageError("keyless verification needs --issuer (the signer's OIDC issuer URL)")
        if identity is not None and not identity:
            raise UsageError("--identity: expected the signer's identity, found an empty string")
        pattern: re.Pattern[str] | None = None
        if identity_regex is not None:
            try:
                pattern = re.compile(identity_regex)
            except re.error as err:
                raise UsageError(
                    f"--identity-regex {identity_regex!r} is not a valid regular expression: {err}"
                ) from err
        self.issuer = issuer
        self.identity = identity
        self.identity_regex = identity_regex
        self.trust_config = trust_config
        self.offline = offline
        self._trusted_root: TrustedRoot | None = load_trusted_root(trust_config) if trust_config else None
        self._verifier: Verifier | None = None
        self._lock = threading.Lock()
        self._pattern = pattern

    def _root(self) -> TrustedRoot:
        return self._trusted_root or public_good_trust_config(offline=self.offline).trusted_root

    def _sigstore_verifier(self) -> Verifier:
        with self._lock:
            if self._verifier is None:
                root = self._root()
                try:
                    self._verifier = Verifier(trusted_root=root)
                except SigstoreError as err:
                    raise ConfigError(f"the Sigstore trust root cannot be used: {err}") from err
            return self._verifier

    def verify_bundle(self, bundle: Mapping[str, Any]) -> tuple[bytes, SignerInfo]:
        # 1. Parse with sigstore-python (checks the v0.3 shape: one certificate, one log entry
        #    with inclusion proof and checkpoint, an inclusion promise).
        parsed = _parse(bundle)
        policy = _IdentityPolicy(self.issuer, self.identity, self._pattern)
        # 2. Chain, SCT, identity policy, log evidence, DSSE signature, entry consistency.
        try:
            payload_type, payload = self._sigstore_verifier().verify_dsse(parsed, policy)
        except GuardError:
            raise
        except SigstoreVerificationError as err:
            raise _map_sigstore_error(err, parsed) from err
        except Exception as err:  # fail closed on anything unexpected, with the reason
            raise VerificationError(f"keyless verification failed: {type(err).__name__}: {err}") from err
        if payload_type != IN_TOTO_PAYLOAD_TYPE:  # the template checks it too; never rely on one check
            raise BundleFormatError(
                f"dsseEnvelope.payloadType: expected {IN_TOTO_PAYLOAD_TYPE}, found {payload_type!r}",
                field="dsseEnvelope.payloadType",
            )
        # 3. Who signed, as the verified certificate and log entry say.
        cert = parsed.signing_certificate
        entry = parsed.log_entry._inner
        details = {
            "certificate_serial": format(cert.serial_number, "x"),
            "certificate_sha256": cert.fingerprint(hashes.SHA256()).hex(),
            "log_index": str(entry.log_index),
            "log_id": entry.log_id.key_id.hex(),
        }
        if entry.integrated_time:
            details["integrated_time"] = datetime.fromtimestamp(entry.integrated_time, UTC).isoformat()
        for name, oid in _DETAIL_EXTENSIONS.items():
            raw = _extension_bytes(cert, x509.ObjectIdentifier(oid))
            value = _der_utf8(raw) if raw is not None else None
            if value:
                details[name] = value
        identity = policy.matched or (certificate_identities(cert) or [""])[0]
        return payload, SignerInfo(
            method="keyless", identity=identity, issuer=certificate_issuer(cert), details=details
        )

    def verify_simple_signing(self, signature: SimpleSignature) -> SignerInfo:
        """A keyless cosign simple-signing signature (Fulcio certificate, Rekor SET): see
        guard.signing.cosign_keyless."""
        from guard.signing.cosign_keyless import verify_simple_keyless  # noqa: PLC0415

        policy = _IdentityPolicy(self.issuer, self.identity, self._pattern)
        return verify_simple_keyless(signature, self._root(), policy)
