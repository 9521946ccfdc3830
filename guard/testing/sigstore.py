"""A test-only Sigstore instance that sigstore-python's ``Verifier`` accepts offline.

``TestSigstore.create(directory)`` makes a Fulcio-style CA (root + intermediate), a CT log key, and
a Rekor-style transparency log, and writes a ``ClientTrustConfig`` JSON trusting them
(``.trust_config_path``). ``sign_payload(payload, identity=...)`` returns a complete keyless
bundle v0.3 for an in-toto payload: a DSSE envelope, a short-lived leaf certificate (SAN, OIDC issuer
extensions 1.3.6.1.4.1.57264.1.1 and .1.8, code-signing EKU, embedded SCT), and a ``dsse`` 0.0.1
log entry with a Merkle inclusion proof, a signed checkpoint and a signed entry timestamp.
``.serve()`` runs Fulcio and Rekor endpoints on 127.0.0.1 so real clients (sigstore-python's
``SigningContext``, hence ``SigstoreSigner`` and ``model_signing``) can sign against it.

The ``tamper_*`` functions return a broken copy of a bundle, one defect each. NEVER trust this
instance outside tests: its keys are generated on the fly and kept in memory.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import struct
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from guard.signing.types import BUNDLE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, SigningMethod

DEFAULT_ISSUER = "https://oidc.guard.test"
DEFAULT_IDENTITY = "signer@example.com"
TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
_OIDC_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_OIDC_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_LOG_NAME = "guard-test-rekor"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    return hashlib.sha256(_spki(key)).digest()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + content


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


# RFC 6962 Merkle tree: leaf hash H(0x00 || d), node hash H(0x01 || l || r).
def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)  # the largest power of two < n


def _root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return _leaf(leaves[0])
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + _root(leaves[:k]) + _root(leaves[k:])).digest()


def _path(index: int, leaves: list[bytes]) -> list[bytes]:
    """The audit path of leaf ``index``, lowest level first (RFC 6962 section 2.1.1)."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(index, leaves[:k]), _root(leaves[k:])]
    return [*_path(index - k, leaves[k:]), _root(leaves[:k])]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # whole seconds: SCT ms survive float math


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "guard test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    now: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True
        )
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class TestSigstore:
    """A Fulcio CA + CT log + transparency log kept in memory, trusted by ``trust_config_path``."""

    __test__ = False  # not a pytest test class
    method: SigningMethod = "keyless"

    def __init__(self, directory: Path, issuer: str, decoy_entries: int) -> None:
        now = _now()
        self.directory = directory
        self.issuer = issuer
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root_cert = _ca_cert("guard-test-fulcio-root", self.root_key, None, self.root_key, now)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate_cert = _ca_cert(
            "guard-test-fulcio-intermediate", self.intermediate_key, self.root_cert, self.root_key, now
        )
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.oidc_key = ec.generate_private_key(ec.SECP256R1())
        self.log_origin = f"{_LOG_NAME} - {secrets.randbits(63)}"
        self._log_lock = threading.Lock()
        self._actions_request_token = secrets.token_urlsafe(16)
        self.ambient_identity = DEFAULT_IDENTITY
        self.log_bodies: list[bytes] = [secrets.token_bytes(64) for _ in range(decoy_entries)]
        self.base_url = "http://127.0.0.1:9"  # nothing listens there unless serve() runs
        self.trust_config_path = directory / "trust_config.json"
        self.write_trust_config()

    @classmethod
    def create(cls, directory: Path, *, issuer: str = DEFAULT_ISSUER, decoy_entries: int = 4) -> TestSigstore:
        """A new instance writing its trust config under ``directory``; the log starts with
        ``decoy_entries`` unrelated leaves so that inclusion proofs have some depth."""
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, issuer, decoy_entries)

    # --- trust material -------------------------------------------------------------------

    def trusted_root(self) -> dict[str, Any]:
        start = {"start": (_now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}

        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            public = key.public_key()
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "logId": {"keyId": _b64(_key_id(public))},
                "publicKey": {
                    "rawBytes": _b64(_spki(public)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": start,
                },
            }

        chain = [self.intermediate_cert, self.root_cert]
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.rekor_key, self.base_url)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "guard test", "commonName": "guard-test-fulcio"},
                    "uri": self.base_url,
                    "validFor": start,
                    "certChain": {
                        "certificates": [
                            {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))} for c in chain
                        ]
                    },
                }
            ],
            "ctlogs": [log(self.ct_key, self.base_url + "/ct")],
            "timestampAuthorities": [],
        }

    def trust_config(self) -> dict[str, Any]:
        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "operator": "guard.test",
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }

        return {
            "mediaType": TRUST_CONFIG_MEDIA_TYPE,
            "trustedRoot": self.trusted_root(),
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.base_url)],
                "oidcUrls": [service(self.base_url + "/oidc")],
                "rekorTlogUrls": [service(self.base_url)],
                "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }

    def write_trust_config(self) -> Path:
        self.trust_config_path.write_text(json.dumps(self.trust_config(), indent=2))
        return self.trust_config_path

    # --- Fulcio -----------------------------------------------------------------------------

    def issue_certificate(
        self,
        public_key: ec.EllipticCurvePublicKey,
        identity: str = DEFAULT_IDENTITY,
        *,
        issuer: str | None = None,
        not_before: datetime | None = None,
        validity: timedelta = timedelta(minutes=10),
        extensions: Mapping[str, str] | None = None,
        legacy_issuer: str | None = None,
    ) -> x509.Certificate:
        """A Fulcio-style leaf: empty subject, critical SAN (URI if ``identity`` has ``://``, else
        email), OIDC issuer in .1.1 (raw; ``legacy_issuer`` makes it differ) and .1.8 (DER
        UTF8String), code signing, embedded SCT. ``extensions``: more Fulcio extensions by dotted
        OID, DER UTF8String values (e.g. ``1.3.6.1.4.1.57264.1.12``, the source repository URI)."""
        issuer = issuer or self.issuer
        start = not_before or _now() - timedelta(seconds=30)
        san: x509.GeneralName = (
            x509.UniformResourceIdentifier(identity) if "://" in identity else x509.RFC822Name(identity)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + validity)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(
                x509.UnrecognizedExtension(_OIDC_ISSUER_V1, (legacy_issuer or issuer).encode()),
                critical=False,
            )
            .add_extension(
                x509.UnrecognizedExtension(_OIDC_ISSUER_V2, _der(0x0C, issuer.encode())), critical=False
            )
        )
        for oid, value in (extensions or {}).items():
            ext = x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), _der(0x0C, value.encode()))
            builder = builder.add_extension(ext, critical=False)
        # The CT log signs the precertificate's TBS (RFC 6962 section 3.2); the final certificate
        # carries the same TBS plus the SCT list extension.
        tbs = builder.sign(self.intermediate_key, hashes.SHA256()).tbs_certificate_bytes
        sct_ms = int(start.timestamp()) * 1000
        issuer_key_hash = _key_id(self.intermediate_key.public_key())
        signed = (
            struct.pack("!BBQH", 0, 0, sct_ms, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)
        )
        signature = _sign(self.ct_key, signed)
        sct = (
            struct.pack("!B", 0)
            + _key_id(self.ct_key.public_key())
            + struct.pack("!QH", sct_ms, 0)
            + struct.pack("!BBH", 4, 3, len(signature))
            + signature
        )  # sha256, ecdsa
        sct_list = struct.pack("!HH", len(sct) + 2, len(sct)) + sct
        leaf = builder.add_extension(
            x509.UnrecognizedExtension(_SCT_LIST, _der(0x04, sct_list)), critical=False
        ).sign(self.intermediate_key, hashes.SHA256())
        assert leaf.tbs_precertificate_bytes == tbs
        return leaf

    # --- Rekor ------------------------------------------------------------------------------

    def log_entry(
        self, body: bytes, kind: str = "dsse", version: str = "0.0.1", integrated_time: int | None = None
    ) -> dict[str, Any]:
        """Append ``body`` (a canonical entry) to the log and return its ``tlogEntries[]`` item with
        a Merkle inclusion proof, a signed checkpoint and a signed entry timestamp."""
        with self._log_lock:
            self.log_bodies.append(body)
            index, size = len(self.log_bodies) - 1, len(self.log_bodies)
            root, path = _root(self.log_bodies), _path(index, self.log_bodies)
        log_id = _key_id(self.rekor_key.public_key())
        itime = int(_now().timestamp()) if integrated_time is None else integrated_time
        note = f"{self.log_origin}\n{size}\n{_b64(root)}\n"
        note_sig = _b64(log_id[:4] + _sign(self.rekor_key, note.encode()))
        set_payload: dict[str, Any] = {
            "body": _b64(body),
            "integratedTime": itime,
            "logID": log_id.hex(),
            "logIndex": index,
        }
        return {
            "logIndex": str(index),
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": kind, "version": version},
            "integratedTime": str(itime),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(_sign(self.rekor_key, rfc8785.dumps(set_payload)))
            },
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": _b64(root),
                "treeSize": str(size),
                "hashes": [_b64(h) for h in path],
                "checkpoint": {"envelope": f"{note}\n\u2014 {_LOG_NAME} {note_sig}\n"},
            },
            "canonicalizedBody": _b64(body),
        }

    @staticmethod
    def dsse_entry_body(envelope: Mapping[str, Any], certificate: x509.Certificate) -> bytes:
        """The canonical body Rekor stores for a ``dsse`` 0.0.1 entry."""
        pem = _b64(certificate.public_bytes(serialization.Encoding.PEM))
        spec: dict[str, Any] = {
            "envelopeHash": {
                "algorithm": "sha256",
                "value": hashlib.sha256(rfc8785.dumps(dict(envelope))).hexdigest(),
            },
            "payloadHash": {
                "algorithm": "sha256",
                "value": hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest(),
            },
            "signatures": [{"signature": s["sig"], "verifier": pem} for s in envelope["signatures"]],
        }
        return rfc8785.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": spec})

    # --- signing ----------------------------------------------------------------------------

    def sign_payload(
        self,
        payload: bytes,
        *,
        identity: str = DEFAULT_IDENTITY,
        issuer: str | None = None,
        payload_type: str = IN_TOTO_PAYLOAD_TYPE,
        extensions: Mapping[str, str] | None = None,
        logged_after: timedelta = timedelta(0),
    ) -> dict[str, Any]:
        """A complete keyless bundle v0.3 for ``payload`` signed by ``identity`` (so that an
        instance is also a ``Signer`` for tests). ``extensions``: see ``issue_certificate``;
        ``logged_after``: how long after now the log records the entry (beyond the certificate's
        10 minutes, the signature was logged with an expired certificate)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue_certificate(key.public_key(), identity, issuer=issuer, extensions=extensions)
        envelope = {
            "payload": _b64(payload),
            "payloadType": payload_type,
            "signatures": [{"sig": _b64(_sign(key, pae(payload_type, payload))), "keyid": ""}],
        }
        logged_at = int((_now() + logged_after).timestamp())
        entry = self.log_entry(self.dsse_entry_body(envelope, cert), integrated_time=logged_at)
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [entry],
                "timestampVerificationData": {},
            },
            "dsseEnvelope": envelope,
        }

    # --- OIDC, and Fulcio / Rekor endpoints for real clients (see serve()) -------------------

    def identity_token(
        self,
        identity: str = DEFAULT_IDENTITY,
        *,
        issuer: str | None = None,
        audience: str = "sigstore",
        lifetime: timedelta = timedelta(minutes=5),
    ) -> str:
        """An OIDC ID token (ES256 JWT) from this instance's test identity provider: ``sub`` (and
        ``email`` when ``identity`` is an email) set to ``identity``."""
        now = _now()
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "sub": identity,
            "aud": audience,
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
        }
        if "@" in identity and "://" not in identity:
            claims |= {"email": identity, "email_verified": True}
        return jwt.encode(claims, self.oidc_key, algorithm="ES256")

    def fulcio_sign(self, authorization: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Fulcio ``POST /api/v2/signingCert``: check the token and the CSR's proof of possession,
        issue a leaf for the token's identity."""
        token = authorization.removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(token, self.oidc_key.public_key(), algorithms=["ES256"], audience="sigstore")
        except jwt.PyJWTError as err:
            raise PermissionError(f"identity token refused: {err}") from err
        csr = x509.load_pem_x509_csr(base64.b64decode(request["certificateSigningRequest"]))
        public_key = csr.public_key()
        if not csr.is_signature_valid or not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ValueError("the CSR is not signed by its (ECDSA) key")
        cert = self.issue_certificate(
            public_key, str(claims.get("email") or claims["sub"]), issuer=claims["iss"]
        )
        chain = [
            c.public_bytes(serialization.Encoding.PEM).decode()
            for c in (cert, self.intermediate_cert, self.root_cert)
        ]
        return {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}

    def rekor_create(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Rekor v1 ``POST /api/v1/log/entries`` for a proposed ``dsse`` entry: check the envelope
        signature with the given certificate, log the canonical body, answer as Rekor does."""
        if request.get("kind") != "dsse":
            raise ValueError(f"this test log only takes dsse entries, not {request.get('kind')!r}")
        proposed = request["spec"]["proposedContent"]
        envelope = json.loads(proposed["envelope"])
        cert = x509.load_pem_x509_certificate(base64.b64decode(proposed["verifiers"][0]))
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("expected an ECDSA certificate")
        payload = base64.b64decode(envelope["payload"])
        for signature in envelope["signatures"]:
            key.verify(
                base64.b64decode(signature["sig"]),
                pae(envelope["payloadType"], payload),
                ec.ECDSA(hashes.SHA256()),
            )
        entry = self.log_entry(self.dsse_entry_body(envelope, cert))
        proof = entry["inclusionProof"]
        return {
            secrets.token_hex(32): {
                "body": entry["canonicalizedBody"],
                "integratedTime": int(entry["integratedTime"]),
                "logID": base64.b64decode(entry["logId"]["keyId"]).hex(),
                "logIndex": int(entry["logIndex"]),
                "verification": {
                    "signedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
                    "inclusionProof": {
                        "logIndex": int(proof["logIndex"]),
                        "treeSize": int(proof["treeSize"]),
                        "rootHash": base64.b64decode(proof["rootHash"]).hex(),
                        "hashes": [base64.b64decode(h).hex() for h in proof["hashes"]],
                        "checkpoint": proof["checkpoint"]["envelope"],
                    },
                },
            }
        }

    def github_actions_env(self, identity: str) -> dict[str, str]:
        """Environment variables of a GitHub Actions job with ``permissions: id-token: write``,
        whose token endpoint (served by ``serve()``) issues tokens for ``identity``."""
        self.ambient_identity = identity
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.base_url}/github-actions/token",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self._actions_request_token,
        }

    def github_actions_token(self, authorization: str, query: str) -> dict[str, str]:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or credential != self._actions_request_token:
            raise PermissionError("bad ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        audience = dict(urllib.parse.parse_qsl(query)).get("audience", "")
        return {"value": self.identity_token(self.ambient_identity, audience=audience)}

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Run Fulcio and Rekor endpoints on 127.0.0.1 (a free port) and point the trust config's
        signing config at them; yields the base URL. Stopped, and the config restored, on exit."""
        server = _Server(("127.0.0.1", 0), _Handler)
        server.sigstore = self
        thread = threading.Thread(target=server.serve_forever, name="test-sigstore", daemon=True)
        thread.start()
        previous, self.base_url = self.base_url, f"http://127.0.0.1:{server.server_address[1]}"
        self.write_trust_config()
        try:
            yield self.base_url
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            self.base_url = previous
            self.write_trust_config()


# --- one defect each --------------------------------------------------------------------------


def _entry(bundle: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = bundle["verificationMaterial"]["tlogEntries"][0]
    return entry


def _flip_last_byte(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[-1] ^= 0x01
    return _b64(bytes(raw))


def tamper_payload(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The DSSE payload edited after signing (a subject digest changed, or a field added)."""
    broken = copy.deepcopy(dict(bundle))
    statement = json.loads(base64.b64decode(broken["dsseEnvelope"]["payload"]))
    try:
        statement["subject"][0]["digest"]["sha256"] = "0" * 64
    except (KeyError, IndexError, TypeError):
        statement["tampered"] = True
    broken["dsseEnvelope"]["payload"] = _b64(json.dumps(statement).encode())
    return broken


def tamper_inclusion_proof(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """One hash of the Merkle audit path altered."""
    broken = copy.deepcopy(dict(bundle))
    proof = _entry(broken)["inclusionProof"]
    proof["hashes"][0] = _flip_last_byte(proof["hashes"][0])
    return broken


def tamper_signed_entry_timestamp(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The signed entry timestamp (inclusion promise) no longer matches the entry."""
    broken = copy.deepcopy(dict(bundle))
    promise = _entry(broken)["inclusionPromise"]
    promise["signedEntryTimestamp"] = _flip_last_byte(promise["signedEntryTimestamp"])
    return broken


def tamper_checkpoint(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint note claims another tree size, under the original signature."""
    broken = copy.deepcopy(dict(bundle))
    checkpoint = _entry(broken)["inclusionProof"]["checkpoint"]
    origin, size, rest = checkpoint["envelope"].split("\n", 2)
    checkpoint["envelope"] = f"{origin}\n{int(size) + 1}\n{rest}"
    return broken


# --- a Fulcio + Rekor (v1) service on 127.0.0.1, for real clients ---------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _reply(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/oidc/.well-known/openid-configuration":
            base = self.server.sigstore.base_url
            self._reply(
                200, {"authorization_endpoint": f"{base}/oidc/auth", "token_endpoint": f"{base}/oidc/token"}
            )
        elif path == "/github-actions/token":
            try:
                self._reply(
                    200,
                    self.server.sigstore.github_actions_token(self.headers.get("Authorization", ""), query),
                )
            except PermissionError as err:
                self._reply(401, {"message": str(err)})
        else:
            self._reply(404, {"message": f"no such endpoint: {path}"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        try:
            request = json.loads(self.rfile.read(length))
            if self.path == "/api/v2/signingCert":
                self._reply(
                    200, self.server.sigstore.fulcio_sign(self.headers.get("Authorization", ""), request)
                )
            elif self.path == "/api/v1/log/entries":
                self._reply(201, self.server.sigstore.rekor_create(request))
            else:
                self._reply(404, {"message": f"no such endpoint: {self.path}"})
        except PermissionError as err:
            self._reply(401, {"message": str(err)})
        except (ValueError, KeyError, TypeError, InvalidSignature, jwt.PyJWTError) as err:
            self._reply(400, {"message": f"bad request: {err!r}"})


class _Server(ThreadingHTTPServer):
    sigstore: TestSigstore
    daemon_threads = True
