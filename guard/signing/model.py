"""Sign and verify model directories in the OMS format."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard.errors import BundleFormatError, GuardError, ModelDirectoryError, UsageError
from guard.signing.bundle import sign_statement, verify_statement
from guard.signing.hashing import hash_model
from guard.signing.manifest import compare_manifests
from guard.signing.oms import manifest_from_statement, statement_for_manifest
from guard.signing.types import (
    DEFAULT_SIGNATURE_NAME,
    LEGACY_PREDICATE_TYPE,
    OMS_PREDICATE_TYPE,
    Manifest,
    Serialization,
    Signer,
    SignerInfo,
    Verifier,
)
from guard.untrusted import parse_json

if TYPE_CHECKING:
    from guard.signing.cache import DigestCache  # its module (and sqlite3) loads with a cache given

MODEL_PREDICATE_TYPES = (OMS_PREDICATE_TYPE, LEGACY_PREDICATE_TYPE)


@dataclass(frozen=True)
class SignedModel:
    manifest: Manifest
    bundle_bytes: bytes
    signature_path: Path | None


@dataclass(frozen=True)
class VerifiedModel:
    manifest: Manifest
    signer: SignerInfo
    statement: Mapping[str, Any]


def _umask() -> int:
    mask = os.umask(0o077)  # there is no reading it without setting it
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes, mode: int | None = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and os.replace:
    readers see the old file or the new one, never a partial one; a symlink at ``path`` is
    replaced, never written through. ``mode`` None: what the umask gives a new file (0o666 &
    ~umask, as ``open`` would)."""
    if mode is None:
        mode = 0o666 & ~_umask()
    directory = path.parent
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory; expected a file path")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except FileNotFoundError as err:
        raise UsageError(f"cannot write {path}: directory {directory} does not exist") from err
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror}") from err
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def relative_inside(path: Path, model_dir: Path) -> str | None:
    """``path`` relative to the model directory (POSIX), or None when it lies outside."""
    try:
        rel = Path(os.path.realpath(path)).relative_to(os.path.realpath(model_dir))
    except ValueError:
        return None
    return rel.as_posix()


def _written_inside(target: Path, model_dir: Path) -> str | None:
    """Where writing ``target`` puts a file, relative to the model directory (or None): its
    directory resolved, its name not. write_atomic replaces a symlink at ``target``; following
    it would ignore the file it points to (a link planted at the signature path to a model
    file left that file unsigned)."""
    written = Path(os.path.realpath(target.parent)) / target.name
    try:
        return written.relative_to(os.path.realpath(model_dir)).as_posix()
    except ValueError:
        return None


def _replaceable(target: Path) -> bool:
    """Whether writing the signature to ``target`` destroys nothing: no file, an empty one, or a
    previous Sigstore bundle (``--signature model/config.json`` replaced the model's config)."""
    try:
        if not target.is_file() or target.stat().st_size == 0:
            return not target.is_symlink() or target.is_file()
        data = parse_json(read_bundle_file(target), str(target), max_bytes=MAX_BUNDLE_BYTES)
    except (OSError, GuardError):
        return False
    return isinstance(data, dict) and str(data.get("mediaType", "")).startswith(
        "application/vnd.dev.sigstore.bundle"
    )


def check_signature_target(target: Path) -> None:
    """UsageError unless writing a signature to ``target`` destroys nothing (see _replaceable)."""
    if not _replaceable(target):
        raise UsageError(
            f"signature path {target} is an existing file that is not a signature; refusing to replace "
            "it (give a new path, or the previous signature's)"
        )


def check_model_dir(model_dir: Path) -> None:
    if not model_dir.exists():
        raise ModelDirectoryError(f"model directory {model_dir} does not exist")
    if not model_dir.is_dir():
        raise ModelDirectoryError(f"{model_dir} is not a directory: expected a model directory")


def _model_name(model_dir: Path) -> str:
    return model_dir.name or Path(os.path.realpath(model_dir)).name


def sign_model(
    model_dir: Path,
    signer: Signer,
    *,
    serialization: Serialization | None = None,
    signature_path: Path | None = None,
    progress: bool = False,
    cache: DigestCache | None = None,
    write: bool = True,
    expected: Manifest | None = None,
) -> SignedModel:
    """Hash ``model_dir``, sign its OMS statement, and write the bundle atomically (default
    ``<model_dir>/model.sig``). The signature file is always ignored when hashing, and recorded
    in ``ignore_paths`` when it lies inside the model (as model-signing does). ``expected``: the
    files the caller wrote there; IntegrityError, and nothing signed, when the directory holds
    others or other bytes (someone else writes to it)."""
    check_model_dir(model_dir)  # before the signature path: name the real problem
    serialization = serialization or Serialization()
    target = signature_path if signature_path is not None else model_dir / DEFAULT_SIGNATURE_NAME
    rel = _written_inside(target, model_dir) if model_dir.is_dir() else None
    if rel is not None and rel not in serialization.ignore_paths:
        serialization = Serialization(
            method=serialization.method,
            hash_type=serialization.hash_type,
            allow_symlinks=serialization.allow_symlinks,
            ignore_paths=(*serialization.ignore_paths, rel),
            shard_size=serialization.shard_size,
        )
    if target.is_dir():
        raise UsageError(f"signature path {target} is a directory; expected a file path")
    if write:
        check_signature_target(target)
    if write and not target.parent.is_dir():  # fail before minutes of hashing, not after
        raise UsageError(f"cannot write {target}: directory {target.parent} does not exist")
    manifest = hash_model(model_dir, serialization, progress=progress, cache=cache)
    if expected is not None:
        compare_manifests(expected, manifest)
    bundle = sign_statement(statement_for_manifest(manifest, _model_name(model_dir)), signer)
    if write:
        write_atomic(target, bundle)
    return SignedModel(manifest, bundle, target if write else None)


# A signature of MAX_SHARDS shards is about 19 MB; a bigger file is not a signature (a weights
# file given by mistake would otherwise be read into memory whole).
MAX_BUNDLE_BYTES = 64 << 20


def read_bundle_file(path: Path, what: str = "signature file") -> bytes:
    """A signature / attestation bundle file, refused unread when larger than MAX_BUNDLE_BYTES."""
    with contextlib.suppress(OSError):
        size = path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            limit = MAX_BUNDLE_BYTES
            raise UsageError(f"{what} {path} is {size} bytes: expected a Sigstore bundle of at most {limit}")
    return path.read_bytes()


def _read_bundle(bundle: bytes | Path) -> bytes:
    if isinstance(bundle, bytes):
        return bundle
    try:
        return read_bundle_file(bundle)
    except FileNotFoundError as err:
        raise UsageError(f"signature file {bundle} does not exist") from err
    except IsADirectoryError as err:
        raise UsageError(f"signature path {bundle} is a directory; expected a signature file") from err
    except OSError as err:
        raise UsageError(f"cannot read signature file {bundle}: {err.strerror}") from err


def verify_model_bundle(bundle: bytes | Path, verifier: Verifier) -> VerifiedModel:
    """Verify the signature and the OMS statement (subject digest consistent with the resources)
    without reading any model file."""
    verified = verify_statement(_read_bundle(bundle), verifier, predicate_types=MODEL_PREDICATE_TYPES)
    manifest = manifest_from_statement(verified.statement)
    return VerifiedModel(manifest=manifest, signer=verified.signer, statement=verified.statement)


def verify_model(
    model_dir: Path,
    bundle: bytes | Path,
    verifier: Verifier,
    *,
    progress: bool = False,
) -> VerifiedModel:
    """Verify the signature, hash the model with the serialization the signature states, and
    compare: IntegrityError names the files added, removed and changed."""
    check_model_dir(model_dir)
    verified = verify_model_bundle(bundle, verifier)
    exclude: list[str] = []
    if isinstance(bundle, Path):
        rel = relative_inside(bundle, model_dir)
        if rel is not None:
            exclude.append(rel)
    compare_manifests(verified.manifest, hash_as_signed(model_dir, verified, exclude, progress=progress))
    return verified


def hash_as_signed(
    model_dir: Path, verified: VerifiedModel, exclude: Sequence[str], *, progress: bool = False
) -> Manifest:
    """``model_dir`` hashed with the serialization a verified signature states, ``exclude`` left
    out (the signature file, when it lies inside); BundleFormatError when it lists no file."""
    if not verified.manifest.resources:
        raise BundleFormatError(
            "predicate.resources: the signature lists no file", field="predicate.resources"
        )
    return hash_model(model_dir, verified.manifest.serialization, progress=progress, exclude=exclude)
