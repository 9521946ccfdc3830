"""Fuzz targets for every parser of bytes someone else controls, and a fast input generator.

A ``Target`` feeds one input (bytes) to one public parser the way guard reads that kind of
content: an AdmissionReview body, an image reference, a descriptor, a manifest, a referrers
index (fallback tag and OCI layout ``index.json``), a Sigstore bundle, a DSSE envelope, an in-toto
statement (past the signature check, so the statement and predicate readers run), an SBOM and
the other attestation predicates, a policy input built from a Kubernetes object, and
``guard.untrusted`` itself. The property every target holds: the parser returns, or raises a
``GuardError``; anything else (``RecursionError``, ``KeyError``, ``TypeError``...) is a crash.

Inputs come from valid seed documents: ``Mutator`` (a seeded ``random.Random``, no dependency)
swaps values for others of the wrong type, deletes and adds keys, nests deeply, and flips, cuts
and repeats bytes of the serialized document, so most inputs get past the first checks. The test
suite drives the same targets with hypothesis (``tests/fuzz``); ``benchmarks/fuzz_parsers.py``
runs the mutator for millions of inputs.
"""

from __future__ import annotations

import atexit
import base64
import copy
import functools
import hashlib
import json
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.errors import GuardError, NotFoundError
from guard.oci.types import OCI_INDEX, Descriptor, FetchedManifest, Opener, ProgressCallback

__all__ = ["TARGETS", "Crash", "Mutator", "Target", "run_one"]

DIGEST = "sha256:" + "ab" * 32
SUBJECT_HEX = "cd" * 32


@dataclass(frozen=True)
class Target:
    """One parser: ``run`` reads one input; ``seeds`` are valid inputs to mutate."""

    name: str
    run: Callable[[bytes], object]
    seeds: Callable[[], tuple[bytes, ...]]


class Crash(Exception):
    """A target raised something other than a GuardError."""

    def __init__(self, target: str, data: bytes, error: BaseException) -> None:
        super().__init__(f"{target}: {type(error).__name__}: {error}")
        self.target = target
        self.data = data
        self.error = error


def run_one(target: Target, data: bytes) -> bool:
    """True when ``target`` accepted ``data``, False when it raised a GuardError; ``Crash``
    for anything else."""
    try:
        target.run(data)
    except GuardError:
        return False
    except Exception as err:  # the property under test: nothing else may escape
        raise Crash(target.name, data, err) from err
    return True


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# --- seeds ---------------------------------------------------------------------------------------


def _pod(*images: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team-a", "labels": {"app": "m"}, "annotations": {"a": "b"}},
        "spec": {
            "containers": [
                {
                    "name": f"c{i}",
                    "image": image,
                    "resources": {"limits": {"nvidia.com/gpu": 1, "cpu": "2"}},
                    "securityContext": {"privileged": False, "runAsNonRoot": True},
                    "env": [{"name": "STORAGE_URI", "value": "s3://bucket/model"}],
                    "volumeMounts": [{"name": "model", "mountPath": "/models"}],
                }
                for i, image in enumerate(images)
            ],
            "initContainers": [{"name": "init", "image": "registry.local/tools/init:v1"}],
            "volumes": [
                {"name": "model", "image": {"reference": "registry.local/models/m:v1"}},
                {"name": "pvc", "persistentVolumeClaim": {"claimName": "c"}},
            ],
            "nodeSelector": {"gpu": "a100"},
            "runtimeClassName": "gvisor",
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["gpu"]}]}
                        ]
                    }
                }
            },
        },
    }


def _review(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "0f6a2c4e-1111-4222-8333-944455556666",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": None,
            "namespace": "team-a",
            "name": "p",
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["dev"]},
            "object": dict(obj),
            "oldObject": None,
            "dryRun": False,
        },
    }


def _descriptor(**extra: Any) -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.cncf.model.weight.v1.raw",
        "digest": DIGEST,
        "size": 1024,
        "annotations": {"org.cncf.model.filepath": "model.safetensors"},
        **extra,
    }


def _manifest() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.model.config.v1+json", "digest": DIGEST, "size": 2},
        "layers": [
            _descriptor(
                annotations={
                    "org.cncf.model.filepath": "model.safetensors",
                    "org.cncf.model.file.metadata+json": '{"name":"model.safetensors","mode":420}',
                }
            ),
            _descriptor(mediaType="application/vnd.cncf.model.weight.v1.tar", annotations={}),
        ],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST, "size": 9},
        "annotations": {"org.opencontainers.image.created": "2025-01-01T00:00:00Z"},
    }


def _index() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": DIGEST,
                "size": 500,
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "annotations": {"dev.sigstore.bundle.predicateType": "https://model_signing/signature/v1.0"},
            },
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "ef" * 32,
                "size": 600,
                "artifactType": "application/vnd.in-toto+json",
                "annotations": {"org.opencontainers.image.ref.name": "v1"},
            },
        ],
    }


def _spec_example(spec: str) -> dict[str, Any]:
    from guard.attest.specs import load_spec_file  # noqa: PLC0415

    return copy.deepcopy(load_spec_file(spec, "example.json"))  # cached: never change the shared one


def _oms_statement() -> dict[str, Any]:
    from guard.signing.oms import statement_for_manifest  # noqa: PLC0415
    from guard.signing.types import Manifest, Resource, Serialization  # noqa: PLC0415

    manifest = Manifest(
        Serialization(),
        (Resource("config.json", "sha256", "34" * 32), Resource("model.safetensors", "sha256", "12" * 32)),
    )
    return statement_for_manifest(manifest, "model")


def _statement(predicate_type: str, predicate: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": SUBJECT_HEX}}],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def _attestation_statements() -> list[dict[str, Any]]:
    from guard.attest.specs import PREDICATES  # noqa: PLC0415

    out = []
    examples = {"sbom": "cyclonedx/v1.6"}
    for spec in PREDICATES:
        example = _spec_example(spec.schema or examples[spec.name])
        out.append(_statement(spec.predicate_types[0], example))
    return out


def _bundle_for(payload: bytes, sig: bytes = b"\x30\x06\x02\x01\x01\x02\x01\x01") -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "fuzz"}},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}],
        },
    }


@functools.cache
def _keys() -> tuple[Any, Any]:
    """A signer and verifier of a key pair made for this process (so mutated bundles reach the
    signature check with real cryptography)."""
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    from guard.signing.sign_key import KeySigner  # noqa: PLC0415
    from guard.signing.verify_key import KeyVerifier  # noqa: PLC0415

    private = ec.generate_private_key(ec.SECP256R1())
    return KeySigner(private), KeyVerifier(private.public_key())


@functools.cache
def _signed_bundle() -> bytes:
    from guard.signing.bundle import sign_statement  # noqa: PLC0415

    signer, _ = _keys()
    return sign_statement(_oms_statement(), signer)


class AcceptingVerifier:
    """A verifier that accepts every signature (its cryptography is fuzzed elsewhere): the
    statement and predicate readers behind the signature check get the mutated payloads."""

    method = "key"

    def verify_bundle(self, bundle: Mapping[str, Any]) -> tuple[bytes, Any]:
        from guard.signing.bundle import envelope_of  # noqa: PLC0415
        from guard.signing.types import SignerInfo  # noqa: PLC0415

        return envelope_of(bundle).payload, SignerInfo("key", "sha256:" + "00" * 32)


class MemoryStore:
    """A repository whose fallback referrers tag holds the fuzzed bytes (no Referrers API)."""

    def __init__(self, index: bytes) -> None:
        self._index = index

    def describe(self) -> str:
        return "fuzz.local/repo"

    def resolve(self, reference: str) -> Descriptor:
        raise NotFoundError(reference)

    def fetch_manifest(self, reference: str) -> FetchedManifest:
        if not reference.startswith("sha256-"):
            raise NotFoundError(reference)
        digest = "sha256:" + hashlib.sha256(self._index).hexdigest()
        return FetchedManifest(Descriptor(OCI_INDEX, digest, len(self._index)), self._index)

    def push_manifest(self, body: bytes, media_type: str, tag: str | None = None) -> Descriptor:
        raise NotFoundError("read-only")

    def blob_exists(self, digest: str) -> bool:
        return False

    def push_blob(
        self, digest: str, size: int, opener: Opener, progress: ProgressCallback | None = None
    ) -> None:
        raise NotFoundError("read-only")

    def fetch_blob(self, digest: str) -> AbstractContextManager[Iterator[bytes]]:
        raise NotFoundError(digest)

    def referrers(self, digest: str) -> list[Descriptor] | None:
        return None

    def push_referrer(self, body: bytes, media_type: str) -> tuple[Descriptor, bool]:
        raise NotFoundError("read-only")


# --- the targets ---------------------------------------------------------------------------------


def _untrusted(data: bytes) -> object:
    from guard.untrusted import parse_json  # noqa: PLC0415

    return parse_json(data, "fuzz", max_bytes=1 << 20)


def _review_target(data: bytes) -> object:
    from guard.admission.review import parse_review  # noqa: PLC0415
    from guard.admission.settings import AdmissionSettings  # noqa: PLC0415

    if len(data) > AdmissionSettings().max_body_bytes:  # the webhook answers 413 before parsing
        return None
    return parse_review(data)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _cli_reference(data: bytes) -> object:
    from guard.oci.reference import parse_reference  # noqa: PLC0415

    ref = parse_reference(_text(data))
    return ref.reference, ref.base(), str(ref), ref.is_loopback


def _policy_reference(data: bytes) -> object:
    from guard.policy.rules import parse_reference  # noqa: PLC0415

    ref = parse_reference(_text(data))
    return ref.name


def _json(data: bytes) -> Any:
    from guard.untrusted import parse_json  # noqa: PLC0415

    return parse_json(data, "fuzz input", max_bytes=1 << 20)


def _descriptor_target(data: bytes) -> object:
    return Descriptor.from_json(_json(data)).to_json()


def _manifest_target(data: bytes) -> object:
    from guard.oci.modelpack import artifact_kind, artifact_layers, layer_is_executable  # noqa: PLC0415

    manifest = FetchedManifest(
        Descriptor("application/vnd.oci.image.manifest.v1+json", DIGEST, len(data)), data
    )
    doc = manifest.json()
    artifact_kind(doc)
    return [layer_is_executable(layer.descriptor) for layer in artifact_layers(doc)]


def _fallback_index(data: bytes) -> object:
    from guard.oci.referrers import read_referrers  # noqa: PLC0415

    listing = read_referrers(MemoryStore(data), DIGEST)
    return listing.of_type("application/vnd.dev.sigstore.bundle.v0.3+json")


@functools.cache
def _layout_dir() -> Path:
    from guard.oci.layout import LayoutStore  # noqa: PLC0415

    root = Path(tempfile.mkdtemp(prefix="guard-fuzz-layout-"))
    atexit.register(shutil.rmtree, root, True)
    LayoutStore(root, create=True)
    return root


def _layout_index(data: bytes) -> object:
    from guard.oci.layout import LayoutStore  # noqa: PLC0415

    root = _layout_dir()
    (root / "index.json").write_bytes(data)
    store = LayoutStore(root)
    try:
        return store.resolve("v1")
    except NotFoundError:
        return store.referrers(DIGEST)


def _bundle_target(data: bytes) -> object:
    from guard.signing.bundle import verify_statement  # noqa: PLC0415

    _, verifier = _keys()
    return verify_statement(data, verifier)


def _dsse_target(data: bytes) -> object:
    """``data`` is the ``dsseEnvelope`` object of an otherwise valid bundle."""
    from guard.signing.bundle import envelope_of, parse_bundle  # noqa: PLC0415

    bundle = _bundle_for(b"{}")
    bundle["dsseEnvelope"] = _json(data)
    return envelope_of(parse_bundle(bundle))


def _statement_target(data: bytes) -> object:
    """``data`` is the DSSE payload (an in-toto statement) of a bundle whose signature is
    accepted: the statement, OMS and attestation readers all run."""
    from guard.attest.subject import ModelSubject  # noqa: PLC0415
    from guard.attest.verify import claimed_predicate_type, verify_attestation  # noqa: PLC0415
    from guard.signing.bundle import verify_statement  # noqa: PLC0415
    from guard.signing.oms import manifest_from_statement, model_name_of  # noqa: PLC0415

    bundle = _bundle_for(data)
    verified = verify_statement(bundle, AcceptingVerifier())  # type: ignore[arg-type]
    claimed_predicate_type(_dumps(bundle))
    if verified.predicate_type.startswith("https://model_signing/"):
        model_name_of(verified.statement)
        return manifest_from_statement(verified.statement)
    subject = ModelSubject(name="model", sha256=SUBJECT_HEX, kind="oci", reference="fuzz.local/m:v1")
    return verify_attestation(bundle, AcceptingVerifier(), subject)  # type: ignore[arg-type]


def _sbom_target(data: bytes) -> object:
    from guard.attest.extract import extract_cyclonedx  # noqa: PLC0415

    return extract_cyclonedx(_json(data))


def _predicate_target(data: bytes) -> object:
    from guard.attest.extract import extract_dataset_provenance, extract_slsa, extract_spdx3  # noqa: PLC0415

    doc = _json(data)
    kind = doc.get("_fuzz_kind") if isinstance(doc, dict) else None
    reader = {"slsa": extract_slsa, "spdx3": extract_spdx3}.get(str(kind), extract_dataset_provenance)
    return reader(doc)


@functools.cache
def _config() -> Any:
    from guard.config import parse_config  # noqa: PLC0415

    return parse_config({})


def _policy_input(data: bytes) -> object:
    from guard.policy.input import Artifact, Verification, build_input_for_object  # noqa: PLC0415

    obj = _json(data)
    if not isinstance(obj, dict):
        obj = {"spec": obj}
    artifacts = [Artifact("registry.local/models/m:v1", "container", ("c0",), Verification("verified"))]
    return build_input_for_object(obj, obj.get("spec") or {}, artifacts, _config())


def _predicate_seeds() -> tuple[bytes, ...]:
    slsa = {**_spec_example("slsa-provenance/v1"), "_fuzz_kind": "slsa"}
    spdx = {**_spec_example("spdx3-ai/v3"), "_fuzz_kind": "spdx3"}
    return tuple(_dumps(d) for d in (slsa, spdx, _spec_example("dataset-provenance/v1")))


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "untrusted",
            _untrusted,
            lambda: (_dumps(_manifest()), _dumps(_index()), b'{"a":[1,2.5,"x",null]}'),
        ),
        Target(
            "admission-review", _review_target, lambda: (_dumps(_review(_pod("registry.local/models/m:v1"))),)
        ),
        Target(
            "reference-cli",
            _cli_reference,
            lambda: (
                b"oci://registry.example.com:5000/team/model:v1",
                b"oci://localhost/a/b@" + DIGEST.encode(),
                b"oci-layout:/tmp/store:v1",
            ),
        ),
        Target(
            "reference-policy",
            _policy_reference,
            lambda: (
                b"registry.example.com:443/team/model:v1",
                b"docker.io/library/busybox@" + DIGEST.encode(),
                b"busybox",
                b"[::1]:5000/m:v1",
            ),
        ),
        Target("descriptor", _descriptor_target, lambda: (_dumps(_descriptor()),)),
        Target("manifest", _manifest_target, lambda: (_dumps(_manifest()),)),
        Target("index-fallback", _fallback_index, lambda: (_dumps(_index()),)),
        Target("index-layout", _layout_index, lambda: (_dumps(_index()),)),
        Target("bundle", _bundle_target, lambda: (_signed_bundle(),)),
        Target(
            "dsse", _dsse_target, lambda: (_dumps(_bundle_for(_dumps(_oms_statement()))["dsseEnvelope"]),)
        ),
        Target(
            "statement",
            _statement_target,
            lambda: tuple(_dumps(s) for s in (_oms_statement(), *_attestation_statements())),
        ),
        Target("sbom", _sbom_target, lambda: (_dumps(_spec_example("cyclonedx/v1.6")),)),
        Target("predicate", _predicate_target, _predicate_seeds),
        Target("policy-input", _policy_input, lambda: (_dumps(_pod("registry.local/models/m:v1")),)),
    )
}


# --- the mutator ---------------------------------------------------------------------------------

_JUNK: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**63,
    2**64,
    -(2**63) - 1,
    1.5,
    -0.0,
    1e308,
    "",
    " ",
    "\x00",
    "\ud800x"[1:],
    "a" * 300,
    "sha256:",
    "sha256:" + "g" * 64,
    DIGEST.upper(),
    "../../etc/passwd",
    "/abs",
    "%s%n",
    "\u202e",
    "oci://",
    [],
    [None],
    {},
    {"": ""},
    {"a": None},
    [[[[]]]],
)


MAX_INPUT_BYTES = 4 * 1024 * 1024  # above every reader's own cap: bigger inputs test nothing more
MAX_PATHS = 20_000  # values of a document the mutator picks from


class Mutator:
    """Structured mutations of seed documents, reproducible from ``seed``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible inputs, not security

    def value(self, depth: int = 0) -> Any:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55 or depth > 3:
            return rng.choice(_JUNK)
        if roll < 0.7:
            return rng.randint(-(2**70), 2**70)
        if roll < 0.8:
            return "".join(
                chr(rng.choice((rng.randint(0, 0x7F), rng.randint(0x80, 0x2FFF))))
                for _ in range(rng.randint(0, 12))
            )
        if roll < 0.9:
            return [self.value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {self.key(): self.value(depth + 1) for _ in range(rng.randint(0, 3))}

    def key(self) -> str:
        return self.rng.choice(
            (
                "mediaType",
                "digest",
                "size",
                "annotations",
                "manifests",
                "layers",
                "spec",
                "containers",
                "image",
                "subject",
                "predicate",
                "predicateType",
                "_type",
                "payload",
                "signatures",
                "resources",
                "name",
                "metadata",
                "x",
                "",
            )
        )

    @staticmethod
    def _paths(doc: Any) -> list[tuple[Any, ...]]:
        """Paths to every value of ``doc`` down to 40 levels (iterative: mutated documents nest)."""
        paths: list[tuple[Any, ...]] = []
        stack: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
        while stack:
            prefix, value = stack.pop()
            paths.append(prefix)
            if len(prefix) >= 40 or len(paths) >= MAX_PATHS:
                continue
            if isinstance(value, dict):
                stack.extend(((*prefix, k), v) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend(((*prefix, i), v) for i, v in enumerate(value))
        return paths

    def mutate_tree(self, doc: Any) -> Any:
        doc = copy.deepcopy(doc)
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            paths = self._paths(doc)
            path = self.rng.choice(paths)
            doc = self._apply(doc, path)
        return doc

    def _apply(self, doc: Any, path: tuple[Any, ...]) -> Any:
        rng = self.rng
        if not path:
            return self.value() if rng.random() < 0.3 else doc
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        op = rng.random()
        if op < 0.5:
            parent[last] = self.value()
        elif op < 0.65 and isinstance(parent, dict):
            del parent[last]
        elif op < 0.65:
            parent.pop(last)
        elif op < 0.75:
            parent[last] = [parent[last]] if rng.random() < 0.5 else {"x": parent[last]}
        elif op < 0.85:
            if isinstance(parent, dict):
                parent[self.key()] = self.value()
            else:
                parent.extend([parent[last]] * rng.randint(1, 40))
        elif op < 0.92:
            depth = rng.choice((63, 64, 65, 100, 127, 129, 1000, 5000))
            nested: Any = parent[last]
            for _ in range(depth):
                nested = [nested]
            parent[last] = nested
        else:
            parent[last] = (
                str(parent[last]) if not isinstance(parent[last], str) else parent[last] * rng.randint(2, 50)
            )
        return doc

    def mutate_bytes(self, data: bytes) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            if not buf:
                buf.extend(rng.randbytes(rng.randint(1, 8)))
                continue
            i = rng.randrange(len(buf))
            op = rng.random()
            if op < 0.3:
                buf[i] = rng.randrange(256)
            elif op < 0.5:
                del buf[i : i + rng.randint(1, 16)]
            elif op < 0.65:
                buf[i:i] = rng.choice(
                    (
                        b"[",
                        b"{",
                        b'"',
                        b"\\",
                        b"\\ud800",
                        b"NaN",
                        b"1e999",
                        b"\xff",
                        b"\xc0\xaf",
                        b"[" * 200,
                        b'{"":',
                        b",",
                        b":",
                        b"-",
                        b"0" * 30,
                    )
                )
            elif op < 0.8:
                buf = buf[:i]
            else:
                j = rng.randrange(len(buf))
                buf[i:i] = buf[min(i, j) : max(i, j)][:256]
        return bytes(buf)

    def input_for(self, seed: bytes) -> bytes:
        """One input derived from ``seed``: mostly a structured mutation of its JSON, sometimes
        a byte-level one, sometimes random bytes."""
        roll = self.rng.random()
        if roll < 0.05:
            return self.rng.randbytes(self.rng.randint(0, 64))
        try:
            doc = json.loads(seed)
        except ValueError:
            doc = None
        if doc is None or roll < 0.25:
            return self.mutate_bytes(seed)
        try:  # the generator's own walks recurse: a mutation nested too deep is not an input
            text = json.dumps(self.mutate_tree(doc), separators=(",", ":"), allow_nan=True)
        except (RecursionError, ValueError):
            return self.mutate_bytes(seed)
        data = text.encode("utf-8", "surrogatepass")
        if len(data) > MAX_INPUT_BYTES:  # repeated copies of copies: bounded, as readers bound them
            return self.mutate_bytes(seed)
        return self.mutate_bytes(data) if roll > 0.9 else data
