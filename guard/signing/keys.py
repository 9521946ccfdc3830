"""Key material: generate, load and fingerprint the ECDSA keys guard signs with.

guard signs with ECDSA on NIST P-256 or P-384 (P-521 is accepted when verifying), the curves the
OMS reference implementation and Sigstore's protobuf specs support. Every failure to use a key is
a ``KeyMaterialError`` that says what was expected and what was found.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from guard.errors import KeyMaterialError, UsageError

KeyAlgorithm = Literal["ecdsa-p256", "ecdsa-p384"]
KEY_ALGORITHMS: dict[str, ec.EllipticCurve] = {
    "ecdsa-p256": ec.SECP256R1(),
    "ecdsa-p384": ec.SECP384R1(),
}
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")
log = logging.getLogger(__name__)
PRIVATE_KEY_NAME = "signing-key.pem"
PUBLIC_KEY_NAME = "signing-key.pub.pem"


@dataclass(frozen=True)
class KeyPair:
    """Where ``generate_keypair`` wrote the keys, and the public key's fingerprint."""

    private_key: Path
    public_key: Path
    fingerprint: str
    encrypted: bool


def describe_key(key: object) -> str:
    """A short human description of a key object (for error messages)."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"an ECDSA key on curve {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"an RSA {key.key_size}-bit key"
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "an Ed25519 key"
    return f"a {type(key).__name__.lstrip('_')}"


def check_ec_public_key(key: object, source: str) -> ec.EllipticCurvePublicKey:
    """Return ``key`` if it is an ECDSA key on a supported curve, else raise KeyMaterialError."""
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyMaterialError(
            f"{source}: expected an ECDSA public key (P-256, P-384 or P-521), found {describe_key(key)}"
        )
    if key.curve.name not in SUPPORTED_CURVES:
        raise KeyMaterialError(
            f"{source}: expected an ECDSA key on P-256, P-384 or P-521, found curve {key.curve.name}"
        )
    return key


def ecdsa_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    """The hash paired with the key's curve (as Sigstore and model-signing pair them)."""
    size = key.curve.key_size
    if size == 256:
        return hashes.SHA256()
    if size == 384:
        return hashes.SHA384()
    return hashes.SHA512()


def public_key_fingerprint(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo of the (public half of the) key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def public_key_hint(key: ec.EllipticCurvePublicKey) -> str:
    """The bundle's ``publicKey.hint`` as model-signing writes it: hex SHA-256 of the PEM SPKI."""
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as err:
        raise KeyMaterialError(f"{what} {path} does not exist") from err
    except IsADirectoryError as err:
        raise KeyMaterialError(f"{what} {path} is a directory, expected a PEM file") from err
    except OSError as err:
        raise KeyMaterialError(f"cannot read {what} {path}: {err.strerror}") from err


def load_private_key(path: Path, passphrase: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """Load a PEM private key (PKCS#8 or SEC1), decrypting it with ``passphrase`` if needed."""
    data = _read(path, "private key")
    if b"-----BEGIN" not in data:
        raise KeyMaterialError(f"private key {path}: expected a PEM file (-----BEGIN ... PRIVATE KEY-----)")
    encrypted = b"ENCRYPTED" in data
    if encrypted and not passphrase:
        raise KeyMaterialError(
            f"private key {path} is encrypted and no passphrase was given "
            "(use --passphrase-env VAR or --passphrase-stdin)"
        )
    if passphrase and not encrypted:
        log.warning("private key %s is not encrypted; the passphrase given is not used", path)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except TypeError as err:
        raise KeyMaterialError(f"private key {path}: {err}") from err
    except ValueError as err:
        if encrypted:
            raise KeyMaterialError(f"private key {path}: cannot decrypt it (wrong passphrase?)") from err
        raise KeyMaterialError(f"private key {path}: not a valid PEM private key ({err})") from err
    except UnsupportedAlgorithm as err:
        raise KeyMaterialError(f"private key {path}: unsupported key algorithm ({err})") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyMaterialError(
            f"private key {path}: expected an ECDSA private key (P-256 or P-384), found {describe_key(key)}"
        )
    check_ec_public_key(key.public_key(), f"private key {path}")
    return key


def load_public_key_pem(data: bytes, source: str) -> ec.EllipticCurvePublicKey:
    """Parse a PEM SubjectPublicKeyInfo and check it is a supported ECDSA key."""
    if b"PRIVATE KEY" in data:
        raise KeyMaterialError(f"{source}: expected a public key, found a private key (never share it)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyMaterialError(f"{source}: not a PEM public key (-----BEGIN PUBLIC KEY-----): {err}") from err
    return check_ec_public_key(key, source)


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Load a PEM public key file."""
    return load_public_key_pem(_read(path, "public key"), f"public key {path}")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (never widening an existing file's permissions)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_keypair(
    out_dir: Path,
    algorithm: str = "ecdsa-p256",
    passphrase: bytes | None = None,
    *,
    name: str = "signing-key",
    force: bool = False,
) -> KeyPair:
    """Write ``<name>.pem`` (PKCS#8, mode 0600, encrypted when a passphrase is given) and
    ``<name>.pub.pem`` (SubjectPublicKeyInfo) in ``out_dir``. Refuses to overwrite unless ``force``."""
    curve = KEY_ALGORITHMS.get(algorithm)
    if curve is None:
        raise UsageError(f"unknown key algorithm {algorithm!r}: expected one of {', '.join(KEY_ALGORITHMS)}")
    if passphrase is not None and not passphrase:
        raise UsageError("the passphrase is empty: give a non-empty passphrase or none at all")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: expected a directory for the key pair, found a file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create output directory {out_dir}: {err.strerror}") from err
    private_path = out_dir / f"{name}.pem"
    public_path = out_dir / f"{name}.pub.pem"
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            if not force:
                raise UsageError(
                    f"{path} already exists; refusing to overwrite it (pass --force to replace it)"
                )
            path.unlink()
    key = ec.generate_private_key(curve)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        _write_new(private_path, private_pem, 0o600)
        _write_new(public_path, public_pem, 0o644)
    except OSError as err:
        raise UsageError(f"cannot write keys in {out_dir}: {err.strerror}") from err
    return KeyPair(private_path, public_path, public_key_fingerprint(key), encrypted=bool(passphrase))
