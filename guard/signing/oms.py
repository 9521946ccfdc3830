"""The OpenSSF Model Signing (OMS) v1.0 in-toto Statement: build it, and read it back.

Statement: ``_type`` in-toto Statement v1; one subject (the model directory's name, with
``digest.sha256`` = SHA-256 over the concatenated raw resource digests); ``predicateType``
``https://model_signing/signature/v1.0``; ``predicate.serialization`` and ``predicate.resources``.
The legacy v0.2 predicate (``https://model_signing/Digests/v0.1``, one subject per file) is read,
never written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from guard.errors import BundleFormatError
from guard.signing.manifest import make_manifest, split_shard_name, subject_digest
from guard.signing.types import (
    DEFAULT_IGNORE_PATHS,
    IN_TOTO_STATEMENT_TYPE,
    LEGACY_PREDICATE_TYPE,
    OMS_PREDICATE_TYPE,
    HashType,
    Manifest,
    Resource,
    Serialization,
)

HASH_TYPES: tuple[HashType, ...] = ("sha256", "blake2b", "blake3")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DIGEST_HEX_LEN = {"sha256": 64, "blake2b": 128, "blake3": 64}


def resource_algorithm(serialization: Serialization) -> str:
    """The ``algorithm`` of each resource, as model-signing names it (``sha256-sharded-<n>`` for shards)."""
    if serialization.method == "shards":
        return f"{serialization.hash_type}-sharded-{serialization.shard_size}"
    return serialization.hash_type


def serialization_to_dict(serialization: Serialization) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": serialization.method,
        "hash_type": serialization.hash_type,
        "allow_symlinks": serialization.allow_symlinks,
        "ignore_paths": list(serialization.ignore_paths),
    }
    if serialization.method == "shards":
        out["shard_size"] = serialization.shard_size
    return out


def statement_for_manifest(manifest: Manifest, model_name: str = "model") -> dict[str, Any]:
    """The OMS v1.0 in-toto Statement for ``manifest`` (resources in canonical order)."""
    ordered = make_manifest(manifest.serialization, manifest.resources)
    return {
        "_type": IN_TOTO_STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": subject_digest(ordered.resources)}}],
        "predicateType": OMS_PREDICATE_TYPE,
        "predicate": {
            "serialization": serialization_to_dict(manifest.serialization),
            "resources": [
                {"name": r.name, "algorithm": r.algorithm, "digest": r.digest} for r in ordered.resources
            ],
        },
    }


def _bad(field: str, message: str) -> BundleFormatError:
    return BundleFormatError(f"statement {field}: {message}", field=field)


def _as_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):  # v0.2 compat wrote strings
        return value.lower() == "true"
    raise _bad(field, f"expected true or false, found {value!r}")


def serialization_from_dict(raw: Any) -> Serialization:
    field = "predicate.serialization"
    if not isinstance(raw, Mapping):
        raise _bad(field, "missing or not an object")
    method = raw.get("method")
    if method not in ("files", "shards"):
        raise _bad(f"{field}.method", f"expected files or shards, found {method!r}")
    hash_type = raw.get("hash_type")
    if hash_type == "blake2":
        hash_type = "blake2b"
    if hash_type not in HASH_TYPES:
        raise _bad(f"{field}.hash_type", f"expected one of {', '.join(HASH_TYPES)}, found {hash_type!r}")
    allow = _as_bool(raw.get("allow_symlinks", False), f"{field}.allow_symlinks")
    ignore = raw.get("ignore_paths", [])
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        raise _bad(f"{field}.ignore_paths", "expected a list of strings")
    shard_size = 1_000_000_000
    if method == "shards":
        size = raw.get("shard_size")
        # model-signing 1.1.1 writes shard_size as a float (8.0): accept integral numbers.
        if isinstance(size, bool) or not isinstance(size, int | float) or size != int(size) or size <= 0:
            raise _bad(f"{field}.shard_size", f"expected a positive integer, found {size!r}")
        shard_size = int(size)
    return Serialization(
        method=method,
        hash_type=hash_type,
        allow_symlinks=allow,
        ignore_paths=tuple(ignore),
        shard_size=shard_size,
    )


def _check_digest(value: Any, algorithm: str, field: str) -> str:
    if not isinstance(value, str) or not _HEX.match(value) or len(value) % 2:
        raise _bad(field, f"expected a hex digest, found {value!r}")
    base = algorithm.split("-sharded-", maxsplit=1)[0]
    want = _DIGEST_HEX_LEN.get(base)
    if want is not None and len(value) != want:
        raise _bad(field, f"expected {want} hex digits for {base}, found {len(value)}")
    return value.lower()


def _resources(raw: Any, serialization: Serialization) -> list[Resource]:
    if not isinstance(raw, list):
        raise _bad("predicate.resources", "missing or not a list")
    expected_algorithm = resource_algorithm(serialization)
    out = []
    for i, item in enumerate(raw):
        field = f"predicate.resources[{i}]"
        if not isinstance(item, Mapping):
            raise _bad(field, "expected an object {name, algorithm, digest}")
        name, algorithm = item.get("name"), item.get("algorithm")
        if not isinstance(name, str) or not name:
            raise _bad(f"{field}.name", f"expected a non-empty string, found {name!r}")
        if algorithm not in (expected_algorithm, serialization.hash_type):
            raise _bad(f"{field}.algorithm", f"expected {expected_algorithm}, found {algorithm!r}")
        if serialization.method == "shards":
            try:
                split_shard_name(name)
            except ValueError as err:
                raise _bad(f"{field}.name", str(err)) from err
        digest = _check_digest(item.get("digest"), str(algorithm), f"{field}.digest")
        out.append(Resource(name=name, algorithm=expected_algorithm, digest=digest))
    return out


def _single_subject_digest(statement: Mapping[str, Any]) -> str:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], Mapping):
        raise _bad("subject", "expected exactly one subject (the model)")
    digest = subjects[0].get("digest")
    value = digest.get("sha256") if isinstance(digest, Mapping) else None
    if not isinstance(value, str):
        raise _bad("subject[0].digest.sha256", "missing")
    return value.lower()


def _legacy_manifest(statement: Mapping[str, Any]) -> Manifest:
    """v0.2: every file is a subject with a sha256 digest; no serialization is recorded."""
    serialization = Serialization(method="files", hash_type="sha256", ignore_paths=DEFAULT_IGNORE_PATHS)
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise _bad("subject", "expected a non-empty list of files")
    resources = []
    for i, item in enumerate(subjects):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise _bad(f"subject[{i}]", "expected an object with a name and a sha256 digest")
        digest = item.get("digest")
        value = digest.get("sha256") if isinstance(digest, Mapping) else None
        resources.append(
            Resource(item["name"], "sha256", _check_digest(value, "sha256", f"subject[{i}].digest.sha256"))
        )
    try:
        return make_manifest(serialization, resources)
    except ValueError as err:
        raise _bad("subject", str(err)) from err


def manifest_from_statement(statement: Mapping[str, Any]) -> Manifest:
    """Read an OMS v1.0 (or legacy v0.2) statement back into a Manifest, checking that the
    subject digest is consistent with the listed resources."""
    predicate_type = statement.get("predicateType")
    if predicate_type == LEGACY_PREDICATE_TYPE:
        return _legacy_manifest(statement)
    if predicate_type != OMS_PREDICATE_TYPE:
        raise _bad("predicateType", f"expected {OMS_PREDICATE_TYPE}, found {predicate_type!r}")
    expected = _single_subject_digest(statement)
    predicate = statement.get("predicate")
    if not isinstance(predicate, Mapping):
        raise _bad("predicate", "missing or not an object")
    serialization = serialization_from_dict(predicate.get("serialization"))
    resources = _resources(predicate.get("resources"), serialization)
    found = subject_digest(resources)
    if found != expected:
        raise _bad(
            "subject[0].digest.sha256",
            f"inconsistent with the resources: the subject says {expected}, the listed resources "
            f"hash to {found}",
        )
    try:
        return make_manifest(serialization, resources)
    except ValueError as err:
        raise _bad("predicate.resources", str(err)) from err


def model_name_of(statement: Mapping[str, Any]) -> str:
    subjects = statement.get("subject")
    if isinstance(subjects, list) and subjects and isinstance(subjects[0], Mapping):
        return str(subjects[0].get("name", ""))
    return ""
