"""Publish small signed, unsigned and tampered models to a registry, for admission tests, the
demo and the benchmark (the real push, sign and attach code paths)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.oci.layout import LayoutStore
from guard.oci.push import push_model
from guard.oci.referrers import attach, load_attachment
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.types import Descriptor, Store
from guard.signing import KeySigner, sign_model
from guard.signing.keys import generate_keypair


@dataclass(frozen=True)
class PublishedModels:
    """References (``host/repo:tag``) and digests of what was published, and the trust material."""

    host: str
    public_key: Path
    private_key: Path
    signed: str
    signed_digest: str
    unsigned: str
    tampered: str
    tampered_file: str

    def config(self, **extra: Any) -> dict[str, Any]:
        """A guard config trusting the key for ``<host>/<prefix>/**`` (policy set to warn on the
        provenance and tenancy bundles, so a signed model without attestations is allowed)."""
        prefix = self.signed.split("/", 2)[1]
        doc: dict[str, Any] = {
            "authorities": {"ci": {"kind": "key", "key": str(self.public_key)}},
            "rules": [{"name": "models", "artifacts": [f"{self.host}/{prefix}/**"], "authorities": ["ci"]}],
            "policy": {
                "requireSbom": False,
                "mutableTags": "warn",
                "enforcement": {"provenance": "warn", "tenancy": "warn"},
            },
        }
        doc.update(extra)
        return doc


def attach_provenance(host: str, reference: str, digest: str, private_key: Path, workdir: Path) -> None:
    """Sign the SLSA provenance example of ``attestations/`` for the artifact at ``digest`` and
    attach it (artifactType in-toto), as ``guard attest`` + ``guard attach`` would."""
    attach_example(
        host,
        reference,
        digest,
        private_key,
        workdir,
        spec="slsa-provenance/v1",
        predicate_type=SLSA_PROVENANCE,
    )


def attach_example(
    host: str,
    reference: str,
    digest: str,
    private_key: Path,
    workdir: Path,
    *,
    spec: str,
    predicate_type: str,
) -> None:
    """Sign the example of ``attestations/<spec>`` as a ``predicate_type`` statement about the
    artifact at ``digest`` and attach it, as ``guard attest`` + ``guard attach`` would."""
    from guard.attest.sign import sign_attestation  # noqa: PLC0415
    from guard.attest.specs import load_spec_file  # noqa: PLC0415
    from guard.attest.subject import ModelSubject  # noqa: PLC0415

    repository = reference.split("/", 1)[1].rsplit(":", 1)[0]
    store = RegistryStore.open(host, repository, RegistryAccess(), loopback=True)
    subject = ModelSubject(name=reference, sha256=digest.split(":", 1)[1], kind="oci", reference=reference)
    predicate = load_spec_file(spec, "example.json")
    bundle = sign_attestation(subject, predicate_type, predicate, KeySigner.from_file(private_key))
    path = workdir / f"{spec.replace('/', '-')}.intoto.json"
    path.write_bytes(bundle)
    attach(store, store.resolve(digest), load_attachment("attestation", path))


SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"


def _model(path: Path, weights: bytes) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "torch_dtype": "bfloat16", "num_parameters": 1000})
    )
    (path / "model.safetensors").write_bytes(weights)
    return path


def publish_models(
    host: str,
    workdir: Path,
    prefix: str = "models",
    access: RegistryAccess | None = None,
    *,
    mirror: Path | None = None,
) -> PublishedModels:
    """Push ``<prefix>/signed:v1`` (signed), ``<prefix>/unsigned:v1`` and ``<prefix>/tampered:v1``
    (its weights changed after signing) to the loopback registry at ``host``, or with ``mirror``
    into the mirror directory of ``host`` (one OCI layout per repository, guard.oci.mirror)."""
    keys = generate_keypair(workdir / "keys", force=True)
    signer = KeySigner.from_file(keys.private_key)
    access = access or RegistryAccess()

    def store(repo: str) -> Store:
        if mirror is not None:
            return LayoutStore(mirror / prefix / repo, create=True)
        return RegistryStore.open(host, f"{prefix}/{repo}", access, loopback=True)

    def push(repo: str, model_dir: Path, signature: Path | None) -> Descriptor:
        target = store(repo)
        pushed = push_model(target, model_dir, "v1")
        if signature is not None:
            attach(target, pushed.descriptor, load_attachment("signature", signature))
        return pushed.descriptor

    signed_dir = _model(workdir / "signed", b"signed weights " * 64)
    signed_sig = workdir / "signed.sig"
    sign_model(signed_dir, signer, signature_path=signed_sig)
    signed = push("signed", signed_dir, signed_sig)

    push("unsigned", _model(workdir / "unsigned", b"unsigned weights " * 64), None)

    tampered_dir = _model(workdir / "tampered", b"tampered weights " * 64)
    tampered_sig = workdir / "tampered.sig"
    sign_model(tampered_dir, signer, signature_path=tampered_sig)
    (tampered_dir / "model.safetensors").write_bytes(b"backdoored weights " * 64)
    push("tampered", tampered_dir, tampered_sig)

    return PublishedModels(
        host=host,
        public_key=keys.public_key,
        private_key=keys.private_key,
        signed=f"{host}/{prefix}/signed:v1",
        signed_digest=signed.digest,
        unsigned=f"{host}/{prefix}/unsigned:v1",
        tampered=f"{host}/{prefix}/tampered:v1",
        tampered_file="model.safetensors",
    )
