"""A reference pinned by a digest of another algorithm than sha256 (``repo@sha512:...``, which the
reference grammar and the container runtimes accept) is verified on bytes that hash to it.

The runtime pulls ``repo@sha512:X`` and checks the bytes it gets against X. guard checked the bytes
it got for a sha256 digest only: a registry (or whatever answers in its name) could hand guard a
signed manifest for ``sha512:X`` and the kubelet the unsigned one whose digest X is."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from guard.admission.recalls import Recall
from guard.admission.review import AdmissionReview
from guard.admission.wiring import build_engine
from guard.config import parse_config
from guard.errors import IntegrityError
from guard.oci.client import RegistryClient
from guard.oci.registry import RegistryAccess, RegistryStore
from guard.oci.types import OCI_MANIFEST
from guard.testing.admission import admission_review, pod
from guard.testing.admission_registry import PublishedModels, publish_models
from tests.oci.netservers import Handler, serve

EVIL = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()
EVIL_SHA512 = "sha512:" + hashlib.sha512(EVIL).hexdigest()


def _sha512(body: bytes) -> str:
    return "sha512:" + hashlib.sha512(body).hexdigest()


def _lying(upstream: str, signed_digest: str, *, header: bool = False) -> Any:
    """A registry in front of ``upstream`` answering every ``manifests/sha512:...`` with the
    signed manifest's bytes (``header``: and the sha512 of those bytes as Docker-Content-Digest,
    as a registry storing it by sha512 would); everything else forwarded."""

    def route(h: Handler) -> None:
        path = h.path
        lie = "/manifests/sha512:" in path
        if lie:
            path = path.split("/manifests/", 1)[0] + f"/manifests/{signed_digest}"
        request = urllib.request.Request(f"http://{upstream}{path}", method=h.command)
        for name in ("Accept", "Authorization"):
            if h.headers.get(name):
                request.add_header(name, h.headers[name])
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, body, headers = answer.status, answer.read(), dict(answer.headers.items())
        except urllib.error.HTTPError as err:
            status, body, headers = err.code, err.read(), dict(err.headers.items())
        kept = {k: v for k, v in headers.items() if k.lower() in ("content-type", "www-authenticate", "link")}
        kept["Connection"] = "close"  # no handler thread outlives its answer (kept-alive by a pool)
        if lie and header:
            kept["Docker-Content-Digest"] = _sha512(body)
        elif not lie and "Docker-Content-Digest" in headers:
            kept["Docker-Content-Digest"] = headers["Docker-Content-Digest"]
        h.answer(status, body, kept)

    return route


def _config(host: str, models: PublishedModels, **extra: Any) -> dict[str, Any]:
    prefix = models.signed.split("/", 2)[1]
    config = models.config(**extra)
    config["rules"] = [{"name": "models", "artifacts": [f"{host}/{prefix}/**"], "authorities": ["ci"]}]
    return config


async def _decide(config: dict[str, Any], image: str) -> Any:
    engine = await build_engine(parse_config(config))
    try:
        return await engine.review(AdmissionReview.model_validate(admission_review(pod(image))).request)
    finally:
        await engine.aclose()


@pytest.mark.registry
async def test_a_sha512_reference_is_not_admitted_on_the_bytes_of_another_manifest(
    registry: Any, tmp_path: Path
) -> None:
    models = publish_models(registry.host, tmp_path / "models", prefix="sha512-lie")
    with serve(_lying(registry.host, models.signed_digest)) as proxy:
        repository = models.signed.split("/", 1)[1].rsplit(":", 1)[0]
        signed = await _decide(_config(proxy.netloc, models), f"{proxy.netloc}/{repository}:v1")
        assert signed.allowed, signed  # the proxy forwards the signed model as it is
        outcome = await _decide(_config(proxy.netloc, models), f"{proxy.netloc}/{repository}@{EVIL_SHA512}")
    assert not outcome.allowed, outcome
    assert "sha512" in (outcome.artifacts[0].message or "")


@pytest.mark.registry
async def test_a_recalled_manifest_named_by_its_sha512_is_still_recalled(
    registry: Any, tmp_path: Path
) -> None:
    models = publish_models(registry.host, tmp_path / "models", prefix="sha512-recall")
    with serve(_lying(registry.host, models.signed_digest, header=True)) as proxy:
        store = RegistryStore(
            RegistryClient(proxy.netloc, RegistryAccess(), loopback=True),
            models.signed.split("/", 1)[1].rsplit(":", 1)[0],
        )
        body = store.fetch_manifest(models.signed_digest).body
        repository = models.signed.split("/", 1)[1].rsplit(":", 1)[0]
        recall = Recall(id="R1", reason="poisoned weights", digest=models.signed_digest)
        config = _config(proxy.netloc, models, recalls=[recall.model_dump(mode="json", exclude_none=True)])
        outcome = await _decide(config, f"{proxy.netloc}/{repository}@{_sha512(body)}")
    assert not outcome.allowed, outcome
    assert "recalled (R1" in (outcome.artifacts[0].message or "")


def test_the_store_checks_a_sha512_digest_against_the_bytes() -> None:
    def route(h: Handler) -> None:
        h.answer(200, EVIL, {"Content-Type": OCI_MANIFEST, "Connection": "close"})

    with serve(route) as server:
        store = RegistryStore(RegistryClient(server.netloc, RegistryAccess(), loopback=True), "team/model")
        with pytest.raises(IntegrityError, match="sha512"):
            store.fetch_manifest("sha512:" + "0" * 128)
        assert store.fetch_manifest(EVIL_SHA512).body == EVIL
