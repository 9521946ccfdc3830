"""Junk anyone with push access to a repository can attach to an artifact, for adversarial tests.

Each ``JunkKind`` pushes one kind of malformed content about a subject manifest: a fallback
referrers tag that is not an index (or one nested too deeply, or with an entry that is not a
descriptor), signature and attestation referrers whose layer descriptor lies, whose bundle is not
JSON, nests 100,000 levels, carries a payload that is not a statement, or claims a terabyte. The
referrers carry the predicate-type annotation of a real signature (or provenance), so guard
does not filter them out unread: they reach the parsers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from guard.errors import NotFoundError
from guard.oci.push import push_bytes
from guard.oci.referrers import PREDICATE_ANNOTATION, add_to_fallback_index, fallback_tag
from guard.oci.types import (
    IN_TOTO_JSON,
    OCI_CREATED,
    OCI_EMPTY,
    OCI_EMPTY_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    SIGSTORE_BUNDLE,
    Descriptor,
    Store,
    sha256_digest,
)
from guard.signing.types import OMS_PREDICATE_TYPE

SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
DEEP = 100_000
NESTED = b"[" * DEEP + b"]" * DEEP

Aims = Literal["signature", "attestation", "index"]


@dataclass(frozen=True)
class JunkKind:
    """``push(store, subject)`` attaches the junk; ``aims`` says what it pretends to be."""

    name: str
    aims: Aims
    push: Callable[[Store, Descriptor], None]


def _empty() -> dict[str, Any]:
    return {"mediaType": OCI_EMPTY, "digest": sha256_digest(OCI_EMPTY_BYTES), "size": len(OCI_EMPTY_BYTES)}


def _kind(aims: Aims) -> tuple[str, dict[str, str]]:
    if aims == "attestation":
        return IN_TOTO_JSON, {PREDICATE_ANNOTATION: SLSA_PROVENANCE}
    return SIGSTORE_BUNDLE, {PREDICATE_ANNOTATION: OMS_PREDICATE_TYPE}


def referrer(
    store: Store,
    subject: Descriptor,
    aims: Aims,
    *,
    layers: list[Any] | None = None,
    blob: bytes | None = None,
    declared_size: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Descriptor:
    """Push a referrer manifest about ``subject`` (newest of all: dated 9999) and list it."""
    artifact_type, annotations = _kind(aims)
    annotations = {**annotations, OCI_CREATED: "9999-12-31T00:00:00Z"}
    push_bytes(store, OCI_EMPTY_BYTES)
    if layers is None:
        data = blob if blob is not None else b"{}"
        digest = push_bytes(store, data)
        layers = [
            {
                "mediaType": SIGSTORE_BUNDLE,
                "digest": digest,
                "size": len(data) if declared_size is None else declared_size,
            }
        ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": _empty(),
        "layers": layers,
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": annotations,
        **(extra or {}),
    }
    pushed, indexed = store.push_referrer(_dumps(manifest), OCI_MANIFEST)
    entry = Descriptor(OCI_MANIFEST, pushed.digest, pushed.size, artifact_type, annotations)
    if not indexed and store.referrers(subject.digest) is None:
        add_to_fallback_index(store, subject.digest, entry)
    return entry


def _fallback(store: Store, subject: Descriptor, body: dict[str, Any], media_type: str = OCI_INDEX) -> None:
    store.push_manifest(_dumps(body), media_type, fallback_tag(subject.digest))


_NESTED_MARK = "\u0000nested\u0000"


def _nest(levels: int) -> str:
    """A placeholder ``_dumps`` replaces with ``levels`` nested arrays (json.dumps recurses)."""
    return f"{_NESTED_MARK}{levels}"


def _dumps(value: Any) -> bytes:
    text = json.dumps(value)
    mark = json.dumps(_NESTED_MARK)[:-1]
    while mark in text:
        start = text.index(mark)
        end = text.index('"', start + len(mark))
        levels = int(text[start + len(mark) : end])
        text = text[:start] + "[" * levels + "]" * levels + text[end + 1 :]
    return text.encode()


def _index_not_an_index(store: Store, subject: Descriptor) -> None:
    push_bytes(store, OCI_EMPTY_BYTES)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _empty(), "layers": []}
    _fallback(store, subject, body, OCI_MANIFEST)


def _index_nested(store: Store, subject: Descriptor) -> None:
    # Go's decoder (the registry's) stops at 10,000 levels: 5,000 are accepted and stored
    _fallback(store, subject, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "x": _nest(5000)})


def _index_bad_entry(store: Store, subject: Descriptor) -> None:
    entry = referrer(store, subject, "signature", blob=b"{}")
    bad = {**entry.to_json(), "size": -1}
    _fallback(store, subject, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [bad]})


def _bundle(payload: bytes) -> bytes:
    return json.dumps(
        {
            "mediaType": SIGSTORE_BUNDLE,
            "verificationMaterial": {"publicKey": {"hint": "junk"}},
            "dsseEnvelope": {
                "payload": base64.b64encode(payload).decode(),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{"sig": base64.b64encode(b"junk").decode(), "keyid": ""}],
            },
        }
    ).encode()


def _referrer_kinds(aims: Aims) -> list[JunkKind]:
    prefix = "signature" if aims == "signature" else "attestation"

    def make(name: str, **kw: Any) -> JunkKind:
        def push(store: Store, subject: Descriptor) -> None:
            referrer(store, subject, aims, **kw)

        return JunkKind(f"{prefix}: {name}", aims, push)

    return [
        make("layer size -1", blob=b"{}", declared_size=-1),
        make("bundle nested 100,000 levels", blob=NESTED),
        make("bundle not JSON", blob=b"\xff\xfe not JSON at all {"),
        make("bundle a JSON array", blob=b"[1, 2, 3]"),
        make("DSSE payload nested 100,000 levels", blob=_bundle(NESTED)),
        make("DSSE payload not a statement", blob=_bundle(b'{"_type": 7, "subject": "x"}')),
        make("bundle declared 1 TiB", blob=b"{}", declared_size=1 << 40),
        make("no layers", layers=[]),
        make("layer not a descriptor", layers=[{"mediaType": 7, "digest": "sha256:zz", "size": "big"}]),
        make("manifest nested 5,000 levels", blob=b"{}", extra={"x": _nest(5000)}),
    ]


def _many(aims: Aims, count: int) -> Callable[[Store, Descriptor], None]:
    """``count`` junk referrers (bundles that are not JSON), newest of all, listed in one write of
    the fallback index (after what it lists already)."""

    def push(store: Store, subject: Descriptor) -> None:
        artifact_type, annotations = _kind(aims)
        push_bytes(store, OCI_EMPTY_BYTES)
        digest = push_bytes(store, b"junk")
        entries = []
        for i in range(count):
            manifest = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": _empty(),
                "layers": [{"mediaType": SIGSTORE_BUNDLE, "digest": digest, "size": 4}],
                "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
                "annotations": {**annotations, OCI_CREATED: "9999-12-31T00:00:00Z", "n": str(i)},
            }
            pushed, _ = store.push_referrer(_dumps(manifest), OCI_MANIFEST)
            entries.append(Descriptor(OCI_MANIFEST, pushed.digest, pushed.size, artifact_type, annotations))
        tag = fallback_tag(subject.digest)
        try:
            listed = store.fetch_manifest(tag).json().get("manifests") or []
        except NotFoundError:
            listed = []
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [*listed, *(e.to_json() for e in entries)],
        }
        store.push_manifest(_dumps(index), OCI_INDEX, tag)

    return push


JUNK: tuple[JunkKind, ...] = (
    JunkKind("index: not an index", "index", _index_not_an_index),
    JunkKind("index: nested 5,000 levels", "index", _index_nested),
    JunkKind("index: entry with size -1", "index", _index_bad_entry),
    *_referrer_kinds("signature"),
    *_referrer_kinds("attestation"),
    # more than the 16 signatures tried before issue 9, fewer than today's documented cap
    JunkKind("signature: 24 junk signatures, newest", "signature", _many("signature", 24)),
    JunkKind("attestation: a bomb of 300 junk attestations", "attestation", _many("attestation", 300)),
)
