"""Verifying backend: a keyless cosign simple-signing signature (Fulcio certificate + Rekor SET).

Legacy cosign signatures carry the Rekor evidence as a ``dev.sigstore.cosign/bundle`` annotation:
the entry body, its integrated time, log index and log id, and the log's SignedEntryTimestamp,
but no Merkle inclusion proof, so sigstore-python's Verifier (which requires one) cannot take
them. The procedure, as cosign itself checks such a signature offline:

1. Parse the leaf certificate (``dev.sigstore.cosign/certificate``) and the Rekor bundle.
2. The SET: the trusted root's log whose key id is ``logID`` (its key valid at
   ``integratedTime``) signed the RFC 8785 canonical JSON of ``{body, integratedTime, logID,
   logIndex}``.
3. The entry body names this signature: a ``hashedrekord`` v0.0.1 whose data hash is the
   SHA-256 of the payload, whose signature is the annotation's and whose public key is this
   certificate. (Without this a valid entry for any other signature could be replayed.)
4. The certificate chains to a Fulcio CA of the trusted root at ``integratedTime``, and it was
   valid then (Fulcio certificates live ten minutes: the log time is the signing time).
5. Its embedded SCT is signed by a CT log of the trusted root.
6. It may sign code (KeyUsage digitalSignature, ExtendedKeyUsage codeSigning).
7. The identity policy: OIDC issuer and SAN (exact or full-match regex).
8. The signature over the payload bytes verifies with the certificate's key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import (
    VerificationError as X509VerificationError,
)
from sigstore._internal.sct import verify_sct
from sigstore._internal.trust import Key, KeyringPurpose
from sigstore.errors import Error as SigstoreError
from sigstore.models import TrustedRoot

from guard.errors import (
    BundleFormatError,
    SignatureMismatch,
    TransparencyLogError,
    UntrustedCertificate,
)
from guard.signing.cosign_key import verify_payload_signature
from guard.signing.types import SignerInfo, SimpleSignature
from guard.untrusted import parse_object

if TYPE_CHECKING:
    from guard.signing.verify_sigstore import _IdentityPolicy


def _field(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleFormatError(
            f"{where}.{key}: expected {kind.__name__}, found {type(value).__name__}", field=f"{where}.{key}"
        )
    return value


def _b64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise BundleFormatError(f"{where}: not valid base64 ({err})", field=where) from err


def _leaf(sig: SimpleSignature) -> x509.Certificate:
    if not sig.certificate:
        raise BundleFormatError(
            f"cosign signature {sig.where} carries no dev.sigstore.cosign/certificate: it was not signed "
            "keyless (verify it with a key authority)",
            field="dev.sigstore.cosign/certificate",
        )
    try:
        return x509.load_pem_x509_certificate(sig.certificate.encode())
    except ValueError as err:
        raise BundleFormatError(
            f"cosign signature {sig.where}: dev.sigstore.cosign/certificate is not a PEM certificate ({err})"
        ) from err


class _RekorBundle:
    """The parsed ``dev.sigstore.cosign/bundle`` annotation (untrusted until step 2)."""

    def __init__(self, sig: SimpleSignature) -> None:
        if not sig.rekor_bundle:
            raise TransparencyLogError(
                f"cosign signature {sig.where} carries no Rekor bundle (dev.sigstore.cosign/bundle): a "
                "keyless signature needs the transparency log's promise to establish when it was signed"
            )
        doc = parse_object(sig.rekor_bundle.encode(), f"{sig.where} dev.sigstore.cosign/bundle")
        where = "dev.sigstore.cosign/bundle"
        self.set = _b64(_field(doc, "SignedEntryTimestamp", str, where), f"{where}.SignedEntryTimestamp")
        payload = _field(doc, "Payload", dict, where)
        where += ".Payload"
        self.body_b64: str = _field(payload, "body", str, where)
        self.integrated_time: int = _field(payload, "integratedTime", int, where)
        self.log_index: int = _field(payload, "logIndex", int, where)
        self.log_id: str = _field(payload, "logID", str, where)
        try:
            self.log_id_bytes = bytes.fromhex(self.log_id)
        except ValueError as err:
            raise BundleFormatError(f"{where}.logID: expected hex, found {self.log_id[:80]!r}") from err
        self.body = parse_object(_b64(self.body_b64, f"{where}.body"), f"{where}.body")

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.integrated_time, UTC)

    def canonical(self) -> bytes:
        return rfc8785.dumps(
            {
                "body": self.body_b64,
                "integratedTime": self.integrated_time,
                "logID": self.log_id,
                "logIndex": self.log_index,
            }
        )


def _verify_set(rekor: _RekorBundle, root: TrustedRoot) -> None:
    """Step 2: the log named by ``logID`` signed this entry; its key was valid then."""
    for tlog in root._inner.tlogs:
        if tlog.log_id.key_id != rekor.log_id_bytes:
            continue
        period = tlog.public_key.valid_for
        if period is not None and (
            rekor.time < period.start or (period.end is not None and rekor.time > period.end)
        ):
            raise TransparencyLogError(
                f"transparency log {rekor.log_id[:16]}...: its key was not valid at the entry's integrated "
                f"time {rekor.time.isoformat()}"
            )
        try:
            key = Key(tlog.public_key)
        except (SigstoreError, ValueError, TypeError) as err:
            raise TransparencyLogError(
                f"transparency log key {rekor.log_id[:16]}... unusable: {err}"
            ) from err
        try:
            key.verify(rekor.set, rekor.canonical())
        except (InvalidSignature, ValueError) as err:
            raise TransparencyLogError(
                "transparency log: the SignedEntryTimestamp is not the trusted log's signature over this "
                f"entry (log index {rekor.log_index}): the entry or its time was altered"
            ) from err
        return
    raise TransparencyLogError(
        f"transparency log: the entry names log {rekor.log_id}, which is not a log of the trusted root"
    )


def _object(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _check_entry(rekor: _RekorBundle, sig: SimpleSignature, leaf: x509.Certificate) -> None:
    """Step 3: the logged entry is about this payload, this signature and this certificate."""
    kind, version = rekor.body.get("kind"), rekor.body.get("apiVersion")
    if kind != "hashedrekord" or version != "0.0.1":
        raise TransparencyLogError(
            f"transparency log entry: expected kind hashedrekord apiVersion 0.0.1, found {str(kind)[:40]!r} "
            f"{str(version)[:20]!r}"
        )
    spec = _object(rekor.body, "spec")
    hashed = _object(_object(spec, "data"), "hash")
    signature = _object(spec, "signature")
    public_key = _object(signature, "publicKey")
    expected_hash = hashlib.sha256(sig.payload).hexdigest()
    if hashed.get("algorithm") != "sha256" or hashed.get("value") != expected_hash:
        raise TransparencyLogError(
            f"transparency log entry is for another payload: it logs {hashed.get('algorithm')!r}:"
            f"{str(hashed.get('value'))[:64]!r}, the payload is sha256:{expected_hash}"
        )
    content = signature.get("content")
    if not isinstance(content, str) or _b64(content, "entry signature.content") != sig.signature:
        raise TransparencyLogError("transparency log entry is for another signature than this layer's")
    pem = public_key.get("content")
    try:
        logged = (
            x509.load_pem_x509_certificate(_b64(pem, "entry publicKey.content"))
            if isinstance(pem, str)
            else None
        )
    except ValueError:
        logged = None
    if logged is None or logged.public_bytes(serialization.Encoding.DER) != leaf.public_bytes(
        serialization.Encoding.DER
    ):
        raise TransparencyLogError("transparency log entry is for another certificate than this signature's")


def _verify_chain(leaf: x509.Certificate, root: TrustedRoot, at: datetime) -> list[x509.Certificate]:
    """Step 4: leaf -> Fulcio CA of the trusted root, at the log's time (as sigstore-python)."""
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store(root.get_fulcio_certs()))
        .time(at)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        return list(verifier.verify(leaf, []).chain[1:])
    except (X509VerificationError, x509.UnsupportedGeneralNameType) as err:
        raise UntrustedCertificate(
            f"the signing certificate does not chain to a Fulcio CA of the trust root at the log time "
            f"{at.isoformat()} (certificate valid {leaf.not_valid_before_utc.isoformat()} to "
            f"{leaf.not_valid_after_utc.isoformat()}; issued by {leaf.issuer.rfc4514_string()}): {err}"
        ) from err


def _check_usage(leaf: x509.Certificate) -> None:
    """Step 6."""
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as err:
        raise UntrustedCertificate(f"the signing certificate lacks {err.oid.dotted_string}") from err
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise UntrustedCertificate("the signing certificate may not sign code (KeyUsage / ExtendedKeyUsage)")


def verify_simple_keyless(sig: SimpleSignature, root: TrustedRoot, policy: _IdentityPolicy) -> SignerInfo:
    """Verify a keyless simple-signing signature (steps 1-8 above) under ``root`` and the identity
    ``policy`` (guard.signing.verify_sigstore's); return who signed and when."""
    from guard.signing.verify_sigstore import certificate_identities, certificate_issuer  # noqa: PLC0415

    # 1. the material
    leaf = _leaf(sig)
    rekor = _RekorBundle(sig)
    # 2. the log's promise, 3. about this signature
    _verify_set(rekor, root)
    _check_entry(rekor, sig, leaf)
    # 4. chain at the log time, 5. SCT, 6. usage
    chain = _verify_chain(leaf, root, rekor.time)
    try:
        verify_sct(leaf, chain, root.ct_keyring(KeyringPurpose.VERIFY))
    except SigstoreError as err:
        raise UntrustedCertificate(
            f"the signing certificate's certificate-transparency proof (SCT) is not signed by a trusted CT "
            f"log ({err})"
        ) from err
    _check_usage(leaf)
    # 7. who
    policy.verify(leaf)
    # 8. the signature itself
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not verify_payload_signature(
        key, sig.signature, sig.payload
    ):
        raise SignatureMismatch(
            f"cosign signature {sig.where} does not verify with its certificate's key: the payload was "
            "modified after signing"
        )
    details = {
        "certificate_sha256": leaf.fingerprint(hashes.SHA256()).hex(),
        "certificate_serial": format(leaf.serial_number, "x"),
        "log_index": str(rekor.log_index),
        "log_id": rekor.log_id,
        "integrated_time": rekor.time.isoformat(),
        "transparency": "signed entry timestamp (no inclusion proof)",
    }
    identity = policy.matched or (certificate_identities(leaf) or [""])[0]
    return SignerInfo(method="keyless", identity=identity, issuer=certificate_issuer(leaf), details=details)
