"""A fetched manifest is parsed once: the store's parse goes to the first ``json()`` call, later
calls parse the bytes again (no two callers share one object), and what ``json()`` refuses is
refused as before."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from guard.cli import run
from guard.errors import UntrustedContentError
from guard.oci.client import RegistryClient
from guard.oci.layout import LayoutStore
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.types import OCI_MANIFEST, Descriptor, FetchedManifest
from tests.oci.netservers import Handler, serve

MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": [{"size": 1}]}
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts guard's untrusted-content parser parses (however a module imported it)."""
    calls: list[str] = []
    real = json.loads

    def counted(text: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(text if isinstance(text, str) else bytes(text).decode())
        return real(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counted)  # the module guard.untrusted parses with
    return calls


def _route(body: bytes) -> Any:
    def route(h: Handler) -> None:
        h.answer(200, body, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": DIGEST})

    return route


def test_a_registry_manifest_is_parsed_once_and_then_again_for_another_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve(_route(MANIFEST)) as server:
        store = RegistryStore(RegistryClient(server.netloc, RegistryAccess(), loopback=True), "team/model")
        calls = _counting(monkeypatch)
        fetched = store.fetch_manifest(DIGEST)
    assert fetched.descriptor.media_type == OCI_MANIFEST
    first = fetched.json()
    assert calls.count(MANIFEST.decode()) == 1  # the descriptor's label and the first json(): one parse
    first["layers"].append({"changed": True})  # the first caller's to change
    second = fetched.json()
    assert calls.count(MANIFEST.decode()) == 2 and second is not first
    assert second == json.loads(MANIFEST)


def test_a_layout_manifest_is_parsed_once(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["push", str(model_dir), f"oci-layout:{tmp_path / 'store'}:v1"]) == 0
    store = LayoutStore(tmp_path / "store")
    descriptor = store.resolve("v1")
    calls = _counting(monkeypatch)
    fetched = store.fetch_manifest(descriptor.digest)
    assert fetched.json() == json.loads(fetched.body)
    assert calls.count(fetched.body.decode()) == 2  # the fetch's parse, and the test's own


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"a": 1, "a": 2}', b"not json"])
def test_what_json_refuses_is_still_refused(body: bytes) -> None:
    digest = "sha256:" + hashlib.sha256(body).hexdigest()

    def route(h: Handler) -> None:
        h.answer(200, body, {"Content-Type": OCI_MANIFEST})

    with serve(route) as server:
        store = RegistryStore(RegistryClient(server.netloc, RegistryAccess(), loopback=True), "team/model")
        fetched = store.fetch_manifest(digest)
    assert fetched.descriptor.media_type == OCI_MANIFEST  # labelled by the header, as before
    with pytest.raises(UntrustedContentError, match=f"manifest {digest}"):
        fetched.json()


def test_a_manifest_built_by_hand_parses_its_bytes() -> None:
    fetched = FetchedManifest(Descriptor(OCI_MANIFEST, DIGEST, len(MANIFEST)), MANIFEST)
    assert fetched.json() == fetched.json() == json.loads(MANIFEST)
