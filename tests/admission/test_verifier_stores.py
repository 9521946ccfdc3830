"""The admission verifier keeps a bounded number of registry stores per worker thread. Any
repository a trust rule's glob matches can be named in a pod, so a stream of pods naming new
repositories must not grow the webhook without end (it would be killed, and with it every
admission of the cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import guard.admission.verifier as verifier_module
from guard.admission.verifier import OciReferenceVerifier
from guard.config import parse_config
from guard.errors import NotFoundError
from guard.testing.admission_registry import publish_models

pytestmark = pytest.mark.registry


def test_the_stores_of_a_thread_are_bounded(
    registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verifier_module, "STORES_PER_THREAD", 8, raising=False)
    models = publish_models(registry.host, tmp_path / "models", prefix="verifier-stores")
    verifier = OciReferenceVerifier(parse_config(models.config()))
    assert verifier.resolve(models.signed) == models.signed_digest
    prefix = models.signed.rsplit("/", 2)[0]
    for i in range(40):  # repositories nobody pushed: each costs a store and a 404
        with pytest.raises(NotFoundError):
            verifier.resolve(f"{prefix}/flood-{i}:v1")
        assert len(verifier._local.stores) <= 8
    # a repository whose store was dropped is opened again, and resolves as before
    assert verifier.resolve(models.signed) == models.signed_digest
    assert len(verifier._local.stores) <= 8
